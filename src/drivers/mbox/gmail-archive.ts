import type { MailboxInfo } from '../../domain/message.js';

/**
 * An mbox archive written in Gmail mode (mbox/sink.ts: one file for All Mail, each message with
 * an `X-Gmail-Labels:` line; no file per label), read back in Gmail mode by MboxSource (`restore`
 * into Gmail, or with `--labels keywords`): each message once, with the labels of its line (as
 * first archived: the line is not rewritten when a label changes later), as the IMAP source
 * gives them in Gmail mode (drivers/imap/gmail.ts).
 *
 * - The labelled folder is the one whose record in the archive's state holds labels (All Mail),
 *   listed `labelled` with the \All role.
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
