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
 *   Ids handed out afterwards are valid for that uidValidity only.
 * - `list(mailbox, wanted)` yields metadata (no bodies) of the messages whose id `wanted` accepts,
 *   in ascending id order. It never fetches a body.
 * - `headers(mailbox)` yields the header block and size of every message; used to re-match an
 *   archive after a UIDVALIDITY change (a rare, slow path).
 * - `fetch(batch, signal)` yields bodies for a batch of one mailbox's messages, in any order, each at
 *   most once. A message that vanished on the server is simply not yielded. Bodies are the bytes the
 *   server sent, in wire form (CRLF): an archive source converts its LF files back (lfToCrlf,
 *   CrlfStream in formats/encoder.ts), so a Sink need not convert again (the SMTP sink sends the
 *   bytes as given). A small body is a Buffer; a large one (over `streamThreshold`) a Readable
 *   that the consumer must drain before asking for the next message.
 *   `fetch` may run `caps.parallel` times at once (an IMAP source holds that many connections).
 *   A source without flags or internal dates (POP3) hands out an empty flag set and no
 *   `internalDate`; nothing else is declared, since nothing decides on it (a sink keeps what it
 *   is given, and `--unseen-only` on POP3 is refused by the config loader).
 * - A lost connection surfaces as a MailferryError with `retryable: true`; the caller retries the
 *   batch, the Source opens a fresh connection. Authentication failures are `kind: 'auth'`.
 * - `close()` logs out every connection; it never throws.
 * - `filtered(mailbox)`, optional (a filtering wrapper, filter.ts): how many messages of `mailbox`
 *   the last `list()` left out on purpose; the pipeline counts them as filtered, not as present.
 */
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
}

export interface Fetched {
  readonly meta: MessageMeta;
  readonly body: Buffer | Readable;
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
  close(): Promise<void>;
  filtered?(mailbox: MailboxInfo): number;
}
