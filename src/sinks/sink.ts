import type { Readable } from 'node:stream';
import type { MailboxInfo, MessageMeta } from '../domain/message.js';

/**
 * The Sink contract. Maildir, mbox, the IMAP target (APPEND) and SMTP forward implement it; the
 * contract suite (test/contract/sink.test.ts) runs the same cases on each. A sink declares no
 * capabilities: what differs is behaviour behind the same calls (an mbox folder's `begin()` waits
 * for the open Tx, an SMTP `write` is final once the relay said 250).
 *
 * - `plan(mailboxes)`, optional: called once, before any `open`, with every mailbox the source
 *   lists (filtered out or not), so that a sink that maps names to places (a local archive) can
 *   give every folder a place of its own, chosen with the whole list known, before anything is
 *   written. It writes nothing; `open` records the place. A sink must still work for a mailbox it
 *   was not given (planned then alone, against what is already placed).
 * - `open(mailbox)` creates or maps the folder for a source mailbox (a \Noselect mailbox only makes
 *   the hierarchy exist), repairs what a crash left behind (a torn mbox tail, files in tmp/), and
 *   returns a SinkFolder whose `known` set holds the ids already durable for `mailbox.uidValidity`.
 *   The source mailbox must carry its current uidValidity.
 * - `SinkFolder.needsRematch` is true when the folder was filled under another uidValidity (or a
 *   previous re-match was interrupted). The pipeline then matches the archive's `fingerprints()`
 *   against the source and calls `rebase(uidValidity, matches)`, which records atomically that
 *   those ids are already present (and relabels the archived messages); nothing is written twice.
 *   `known` is empty then, or holds ids the sink can still vouch for (an IMAP target's records
 *   whose target UID is still there); those are not matched again and stay known after `rebase`.
 * - Writing happens in transactions: `begin()` resolves with a Tx once the folder is free (a serial
 *   folder such as one mbox file has at most one open Tx). `tx.write(meta, body)` stages a message
 *   (it may already be on disk, but it does not count); `tx.commit()` makes every staged message
 *   durable (fsync, rename, fsync the directory) and then records the checkpoint (with, for a
 *   message without internalDate, the time it was first made durable). Only after
 *   `commit()` resolves is a message acknowledged. `tx.abort()` discards what was staged; an
 *   interrupted process leaves at worst staged garbage that the next `open` removes.
 *   A body Readable must be consumed fully by `write` before it resolves. When the stream fails
 *   (the source lost its connection mid-message), `write` rejects with the stream's error as the
 *   source's (drivers/body.ts: a MailferryError, retryable; never `destination`), keeps nothing of
 *   that message, and the Tx stays usable: `commit()` keeps what was written before it. A write
 *   error of the sink's own ends that write at once (its file closed and removed, the stream
 *   destroyed) and is `destination`.
 * - Errors are MailferryError: `destination` when the archive cannot be written (permissions, disk
 *   full), which stops the run; a message the sink cannot represent is `message` (skipped, reported),
 *   thrown by `write` or listed by `tx.refused()`; a full IMAP target is `quota` (copying stops).
 * - `SinkFolder.syncFlags(metas)`, optional: the sink keeps flags in step with the source. The
 *   pipeline then lists every message (not only new ones) and hands it the metadata of messages
 *   already in this folder (`known`), with their current source flags; the sink writes the changes
 *   since it last wrote each message's flags (IMAP target: UID STORE; a Maildir could rename to
 *   `:2,<info>`), records them, and resolves with how many messages it changed.
 *   A Maildir folder of a `labelled` source folder (Gmail's All Mail) implements it for labels:
 *   each label folder holds hard links to the labelled folder's files (drivers/maildir/labels.ts),
 *   linked in `commit` and carried here (a label added is linked, one removed is unlinked).
 *   A `label` folder (MailboxInfo.label) is opened like a container: its folder exists, and is never written through a Tx.
 * - `SinkFolder.removeGone(present)`, optional (`--sync-deletions`): the sink removes the messages it
 *   put in this folder itself (in `known`, and where it knows exactly which stored message each is:
 *   an IMAP target's recorded UID) whose id is not in `present`, the ids of every message the
 *   source folder holds now (the pipeline calls it only after a complete listing, and after any
 *   re-match). It removes nothing else, first removes and then records (a crash in between: the
 *   next call finds them gone again and only cleans the record), drops the removed ids from
 *   `known` and the checkpoint, and resolves with how many it removed. A sink that cannot remove
 *   exactly those messages removes nothing and says why. Local archives do not implement it.
 * - `close()` releases files and locks; it never throws.
 */
export interface Fingerprint {
  /** sha256 (hex) of the header block with LF line endings, plus the CRLF size: "hash:size". */
  readonly key: string;
  /** A second key the same archived message may match (mbox without state: was a final LF ours?). */
  readonly alt?: string;
  /** Which archived message this is, for `rebase` (a Maildir file name; unused by mbox). */
  readonly ref: string;
}

export interface Match {
  /** The source id the archived message now stands for. */
  readonly id: string;
  readonly ref: string;
  /** Matched by the alternative key (mbox: the final LF was framing, not part of the message). */
  readonly alt?: boolean;
}

export interface Refusal {
  id: string;
  reason: string;
  /** Not sent because the target is full (`commit` or a later `write` threw `quota`). */
  full?: boolean;
}

export interface Tx {
  write(meta: MessageMeta, body: Buffer | Readable): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
  /**
   * Optional, read after `commit()`: messages the sink refused after their `write` resolved (an
   * IMAP target sending groups, an SMTP relay's 5xx or a 4xx that persisted); not recorded,
   * reported as skipped. The pipeline reads refusals here and from `message` errors of `write`,
   * nowhere else.
   */
  refused?(): readonly Refusal[];
}

export interface SinkFolder {
  readonly mailbox: MailboxInfo;
  readonly known: ReadonlySet<string>;
  readonly needsRematch: boolean;
  fingerprints(): AsyncIterable<Fingerprint>;
  rebase(uidValidity: bigint | undefined, matches: readonly Match[]): Promise<void>;
  begin(): Promise<Tx>;
  syncFlags?(metas: readonly MessageMeta[]): Promise<number>;
  removeGone?(present: ReadonlySet<string>): Promise<number>;
}

export interface Sink {
  /** e.g. `maildir:/home/me/mail` — used in messages and the summary. */
  readonly name: string;
  plan?(mailboxes: readonly MailboxInfo[]): Promise<void>;
  open(mailbox: MailboxInfo): Promise<SinkFolder>;
  close(): Promise<void>;
}
