import type { MailboxInfo, MessageMeta } from '../../domain/message.js';
import type { Logger } from '../../log/logger.js';
import type { Checkpoint, FolderCheckpoint } from '../../state/checkpoint.js';
import { recordLabels } from '../labels.js';

/**
 * An mbox archive written in Gmail mode (mbox/sink.ts: one file for All Mail, each message with
 * an `X-Gmail-Labels:` line; no file per label), read back in Gmail mode by MboxSource (`restore`
 * into Gmail, or with `--labels keywords`): each message once, with its labels, as the IMAP
 * source gives them in Gmail mode (drivers/imap/gmail.ts).
 *
 * - A label change on the server is carried on the next backup (`syncLabels`, the sink's
 *   `syncFlags` of All Mail: a metadata listing, no download) into the archive's state, not into
 *   the file: the state's label record of each message (LabelRecord, with `at`, the offset of its
 *   From_ line) is its labels from then on, and the X-Gmail-Labels line stays as first archived.
 *   Why not rewrite the line: a longer line (a label added) would move every later byte, a
 *   rewrite of the whole file (gigabytes for a Gmail account) for one label; in place, a write
 *   torn by a crash would damage a message already durable; and other mail programs may hold the
 *   file open. The state is written atomically by every commit already, so a crash leaves the old
 *   record or the new one, and the next run compares again. Python's mailbox, mutt and Takeout
 *   readers see the labels as first archived; `restore` sees the current ones.
 * - The labelled folder is the one whose record in the archive's state holds labels (All Mail),
 *   listed `labelled` with the \All role; each message carries the labels its record gives (by
 *   `at`), else those of its X-Gmail-Labels line (a record without `at`, from an older run). A
 *   file another program rewrote is read by its lines only (the offsets point elsewhere).
 * - Every label its messages carry is listed as a folder showing it (`label`), with no file of its
 *   own: INBOX for `\Inbox`, Gmail's English names beside All Mail (`[Gmail]/Sent Mail`,
 *   `Drafts`, `Starred`, `Important`) for the system labels, a user label by its name with "/".
 *   A label whose name an archive file already takes is warned about and left a plain folder.
 */
const SYSTEM_FOLDER: Readonly<Record<string, string>> = { '\\Sent': 'Sent Mail', '\\Draft': 'Drafts', '\\Starred': 'Starred', '\\Important': 'Important' };

/** The folder that shows `label`, beside `all` (the labelled folder). */
export function labelFolderOf(label: string, all: MailboxInfo): MailboxInfo {
  if (label === '\\Inbox') return { path: 'INBOX', delimiter: '/', label };
  const system = SYSTEM_FOLDER[label];
  if (system === undefined) return { path: label, delimiter: '/', label };
  const d = all.delimiter;
  const at = d === '' ? -1 : all.path.lastIndexOf(d);
  return { path: at === -1 ? system : `${all.path.slice(0, at + d.length)}${system}`, delimiter: d === '' ? '/' : d, label };
}

/** Offset of a message's From_ line -> its labels as the state records them now. */
export function labelsByOffset(f: FolderCheckpoint | undefined): Map<number, readonly string[]> {
  const out = new Map<number, readonly string[]>();
  for (const r of f?.labels?.values() ?? []) if (r.at !== undefined) out.set(r.at, r.labels);
  return out;
}

/** Offset of a message's From_ line -> its Gmail thread id (X-GM-THRID) as recorded, for a restore into Gmail to compare threads. */
export function threadsByOffset(f: FolderCheckpoint | undefined): Map<number, string> {
  const out = new Map<number, string>();
  for (const r of f?.labels?.values() ?? []) if (r.at !== undefined && r.threadId !== undefined) out.set(r.at, r.threadId);
  return out;
}

/**
 * The sink's `syncFlags` of a labelled mbox folder: the records of archived messages whose labels
 * changed on the server since are replaced (their `at` kept), in one state write; how many changed.
 */
export async function syncLabels(checkpoint: Checkpoint, key: string, metas: readonly MessageMeta[], log: Logger | undefined): Promise<number> {
  const recorded = checkpoint.folder(key)?.labels;
  const same = (a: readonly string[] | undefined, b: readonly string[]): boolean => a !== undefined && a.length === b.length && [...a].sort().every((l, i) => l === [...b].sort()[i]);
  const changed = metas.filter((m) => m.labels !== undefined && !same(recorded?.get(m.id)?.labels, m.labels));
  if (changed.length === 0) return 0;
  checkpoint.update(key, (f) => recordLabels(f, changed));
  await checkpoint.save();
  log?.info(`${key}: labels of ${changed.length} messages changed; recorded in the archive's state`);
  return changed.length;
}
