/** What the IMAP target's folder code (target-folder.ts), its flag updates (flags.ts) and its removal of deleted mail (expunge.ts) share. */
import type { ImapFlow } from 'imapflow';
import { MailferryError } from '../../domain/errors.js';
import type { Checkpoint } from '../../state/checkpoint.js';
import type { Conn } from './pool.js';
import type { Threads } from './threads.js';

/**
 * What a target folder and its flag and expunge helpers use of the target Sink (ImapAppendSink in
 * target.ts implements it), so that those files need not import the sink that imports them.
 */
export interface TargetSink {
  readonly name: string;
  readonly where: string;
  readonly checkpoint: Checkpoint;
  /** The target takes MULTIAPPEND (and we may use it). */
  readonly multi: boolean;
  /** The target is Gmail (X-GM-EXT-1): labels are set with STORE +X-GM-LABELS. */
  readonly gmail: boolean;
  /** Gmail to Gmail: the target threads each source conversation became (threads.ts). */
  readonly threads: Threads;
  /** The largest message to send, and who says so; none when neither the server nor the profile does. */
  readonly appendLimit: { bytes: number; by: 'server' | 'profile' } | undefined;
  /** Run `fn` on a pooled connection; errors become MailferryError (`what` names a NO). */
  withConn<T>(fn: (c: Conn) => Promise<T>, what?: string): Promise<T>;
}

/** UIDs per UID STORE / UID FETCH of flags. */
export const STORE_UIDS = 2000;

/** Checkpoint key of the target side of a folder; NUL cannot occur in a mailbox name. */
export function targetKey(sourcePath: string): string {
  return `\u0000target:${sourcePath}`;
}

/**
 * Leave the selected mailbox without expunging: CLOSE on a mailbox opened read-write removes every
 * message flagged \Deleted (RFC 3501 6.4.2), which on a target holding the source's \Deleted
 * messages would lose them. EXAMINE first (selecting closes the previous mailbox without expunge,
 * RFC 3501 6.3.1), then CLOSE the read-only mailbox.
 */
export async function deselect(client: ImapFlow): Promise<void> {
  const box = client.mailbox;
  if (box === false) return;
  if (box.readOnly !== true) await client.mailboxOpen(box.path, { readOnly: true });
  await client.mailboxClose();
}

/**
 * UID STORE +FLAGS / -FLAGS of `add` and `remove` on the UIDs of `set` (`labels`: +X-GM-LABELS /
 * -X-GM-LABELS), the folder selected read-write. imapflow answers a refused STORE (NO, BAD) with
 * `false`, not an error; here it is one (`mailbox`), so that no flag or label the server refused is
 * recorded as stored (the record would hide the difference from every later run).
 */
export async function storeChange(client: ImapFlow, set: string, add: readonly string[], remove: readonly string[], labels: boolean, folder: string): Promise<void> {
  const opts = labels ? { uid: true, useLabels: true } : { uid: true };
  const refused = (): MailferryError => new MailferryError('mailbox', `the target refused to store ${labels ? 'labels' : 'flags'} in "${folder}"`);
  if (add.length > 0 && !(await client.messageFlagsAdd(set, [...add], opts))) throw refused();
  if (remove.length > 0 && !(await client.messageFlagsRemove(set, [...remove], opts))) throw refused();
}
