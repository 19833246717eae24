import type { Readable } from 'node:stream';
import type { MailboxInfo, MessageMeta } from '../domain/message.js';

/**
 * The Source contract. The pipeline is written once against it; IMAP, POP3, Maildir and mbox
 * implement it and keep their libraries to themselves, and all four pass the same contract suite
 * (test/contract/source.test.ts).
 *
 * - `mailboxes()` lists every mailbox, parents before children, \Noselect containers included
 *   (flagged `noSelect`) so that a Sink can reproduce the hierarchy. Names are Unicode.
 * - `select(mailbox)` opens a mailbox and returns it with its current `uidValidity` and message count.
 *   Ids handed out afterwards are valid for that uidValidity only. A folder whose server gives no
 *   usable UIDVALIDITY (none, not a number, zero, over 19 digits) gets a stand-in below zero, new
 *   for each run (drivers/imap/uid-validity.ts, warned once per folder): its ids are trusted
 *   within the run only, so every run is a UIDVALIDITY change and re-matches by `headers()`.
 * - `list(mailbox, wanted)` yields metadata (no bodies) of the messages whose id `wanted` accepts,
 *   in ascending id order. It never fetches a body.
 * - `headers(mailbox)` yields the header block and size of every message; used to re-match an
 *   archive after a UIDVALIDITY change (a rare, slow path).
 * - `fetch(batch, signal)` yields bodies for a batch of one mailbox's messages, in any order, each at
 *   most once. A message that vanished on the server is simply not yielded, and neither is one the
 *   server refuses (POP3 `RETR` answered -ERR): `missing()` says which is which. Bodies are the
 *   bytes the server sent, in wire form (CRLF): an archive source converts its LF files back
 *   (lfToCrlf, CrlfStream in formats/encoder.ts), so a Sink need not convert again (the SMTP sink
 *   sends the bytes as given). A small body is a Buffer; a large one (over `streamThreshold`) a
 *   Readable that the consumer must drain before asking for the next message.
 *   `fetch` may run `caps.parallel` times at once (an IMAP source holds that many connections).
 *   A source without flags or internal dates (POP3) hands out an empty flag set and no
 *   `internalDate`; nothing else is declared, since nothing decides on it (a sink keeps what it
 *   is given, and `--unseen-only` on POP3 is refused by the config loader).
 * - A lost connection surfaces as a MailferryError with `retryable: true`, from `fetch` or as the
 *   error of a body Readable (which a source may first try to resume itself: IMAP resumes a large
 *   message from the first byte not received); the caller retries the batch, the Source opens a
 *   fresh connection. Authentication failures are `kind: 'auth'`.
 * - `close()` logs out every connection; it never throws.
 * - `missing(mailbox, ids, signal)`: the pipeline reconciles every batch (asked for, minus arrived,
 *   minus refused by a sink, must be empty) and asks about what is left: which of `ids` are
 *   `gone` from the mailbox, asked anew and never from a cache (IMAP: the same UIDVALIDITY and
 *   `UID SEARCH UID <set>` on a connection logged in for the question does not return it; POP3:
 *   not in a new session's UIDL; an archive: the file or offset is gone), counted as vanished;
 *   which the source cannot give (`refused`, with the server's reason: POP3 `RETR` -ERR),
 *   reported as skipped; which a wrapper `held` back on purpose (a spent daily budget, a dry
 *   run), not copied in this run and not an error. Every other id is still there: the fetch fell
 *   short, and the pipeline fails the batch as retryable. A source that cannot tell throws (a
 *   lost connection is retryable as everywhere); it never guesses "gone".
 * - `list()` calls `wanted(id)` once for each message it sees and yields every message `wanted`
 *   accepted (the pipeline counts the rest as already copied, and the ones accepted but not
 *   yielded as a gap, checked with `missing()`). A message the source sees but cannot hand out
 *   (POP3: a UIDL two messages share, a header `TOP` refuses under `--no-uidl`) goes to
 *   `unlisted(mailbox)`, optional: what the last `list()` of `mailbox` passed over, with a reason;
 *   the pipeline reports each as skipped.
 * - `filtered(mailbox)`, optional (a filtering wrapper, filter.ts): how many messages of `mailbox`
 *   the last `list()` left out on purpose; the pipeline counts them as filtered, not as present.
 * - `status(mailbox)`, optional: how many messages the mailbox holds and, where the server says
 *   so cheaply, their total size, without selecting it or listing its messages (IMAP `STATUS
 *   (MESSAGES SIZE)`, SIZE only with RFC 8438 STATUS=SIZE). `mailferry folders` uses it; without
 *   it, or without `bytes`, it selects the mailbox and sums the sizes `list()` gives.
 * - Labels (Gmail mode, drivers/imap/gmail.ts, only when the caller keeps labels and the server
 *   announces X-GM-EXT-1): `mailboxes()` marks the one folder whose messages are fetched
 *   `labelled` (All Mail) and every folder that only shows a label with that `label` (INBOX is
 *   `\Inbox`, Sent `\Sent`, user labels their name); the pipeline opens those, never lists or
 *   fetches them. `list()` of the labelled folder gives each message its `labels` (sorted,
 *   Unicode, each the `label` of a listed folder or of none), `globalId` and `threadId`; `fetch`
 *   hands the same on. Spam and Trash, which All Mail does not hold, are plain folders.
 * - `watch(paths, opts)`, optional (IMAP: IDLE, drivers/imap/idle.ts): a FolderWatch on the named
 *   folders, with connections of its own (one per folder, besides `caps.parallel`), that outlives
 *   the Source: `close()` of the Source does not end it, its own `close()` does. It only says
 *   which folders may have new messages; copying them stays the pipeline's (a normal run of those
 *   folders), so nothing it says can lose or double a message. A source without it is polled.
 *   Where the command carries them (`opts.also`), flag changes and expunges count as changes too.
 */
export interface FolderWatch {
  /**
   * The watched folders that may have new messages since the last call: at once when some
   * already may (every folder counts as changed right after its session (re)connected, since
   * mail may have come while nobody watched), else when the server says so, or `[]` after `ms`
   * or when `signal` aborts. A lost session is reconnected inside, with capped backoff, for ever;
   * what cannot pass by waiting (a refused login, an untrusted certificate) rejects here.
   */
  changes(ms: number, signal: AbortSignal): Promise<string[]>;
  /** How many of the watched folders have a live session now (the heartbeat reports it). */
  readonly live: number;
  close(): Promise<void>;
}

export interface WatchOptions {
  /** IDLE is ended and issued again after this long (RFC 2177 section 3: at most 29 minutes). */
  renewMs: number;
  /** Reconnect backoff: the first wait, doubled after each failure up to `maxMs`. */
  backoff: { baseMs: number; maxMs: number };
  /**
   * Besides new mail, what else counts a folder as changed, for a command that carries it: a
   * message's flags changed (`flags`), a message expunged (`expunges`). Said after a short quiet
   * moment, so a burst of changes (a client marking a thread read) makes one pass.
   */
  also?: WatchedChanges;
}

export interface WatchedChanges {
  flags?: boolean;
  expunges?: boolean;
}
export interface FolderStatus {
  readonly messages: number;
  /** Total size in bytes (wire form), when the source can tell without listing. */
  readonly bytes?: number;
}

export interface SourceCaps {
  /** How many `fetch` calls may run at once; the pipeline runs that many batches in parallel. */
  readonly parallel: number;
}

export interface Selected {
  readonly mailbox: MailboxInfo;
  readonly count: number;
}

export interface HeaderSample {
  readonly id: string;
  /** Size on the wire (CRLF). */
  readonly size: number;
  /** The header block, up to and including the blank line, as the server sent it. */
  readonly header: Buffer;
  /**
   * Another size the message may have when fetched: a POP3 server adds the final CRLF that a
   * message lacks (RFC 1939 §3 cannot express its absence), and its LIST size does not count it.
   */
  readonly altSize?: number;
  /**
   * A copy's record of which source message this is: the source's id under that uidValidity (a
   * Maildir archive's U=, with the folder's uidValidity from its state). Verify pairs by it first.
   */
  readonly origin?: { readonly uidValidity: bigint; readonly id: string };
}

export interface Fetched {
  readonly meta: MessageMeta;
  readonly body: Buffer | Readable;
}

/** What `missing()` found out about ids a fetch did not yield; an id in none of these is still there. */
export interface Missing {
  /** No longer in the mailbox (expunged, deleted, the file gone): counted as vanished. */
  readonly gone: ReadonlySet<string>;
  /** The source cannot give these (id -> the server's reason): reported as skipped. */
  readonly refused?: ReadonlyMap<string, string>;
  /** Held back on purpose by a wrapper (daily budget, dry run): not copied now, not an error. */
  readonly held?: ReadonlySet<string>;
}

/** A message `list()` saw but could not hand out, and why. */
export interface Unlisted {
  readonly id?: string;
  readonly reason: string;
}

export interface Source {
  readonly caps: SourceCaps;
  /** Human-readable identity without secrets, e.g. `imaps://alice@mail.example.org:993`. */
  readonly identity: string;
  mailboxes(): Promise<MailboxInfo[]>;
  select(mailbox: MailboxInfo): Promise<Selected>;
  list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta>;
  headers(mailbox: MailboxInfo): AsyncIterable<HeaderSample>;
  fetch(batch: readonly MessageMeta[], signal: AbortSignal): AsyncIterable<Fetched>;
  missing(mailbox: MailboxInfo, ids: readonly string[], signal: AbortSignal): Promise<Missing>;
  close(): Promise<void>;
  filtered?(mailbox: MailboxInfo): number;
  status?(mailbox: MailboxInfo): Promise<FolderStatus>;
  unlisted?(mailbox: MailboxInfo): readonly Unlisted[];
  watch?(paths: readonly string[], opts: WatchOptions): FolderWatch;
}
