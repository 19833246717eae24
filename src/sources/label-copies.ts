import type { MailboxInfo } from '../domain/message.js';
import { SourceWrapper } from './wrapper.js';

/**
 * Counts the extra copies a run makes because of labels: the folders the source marks
 * `labelCopy` (a Gmail label copied as a plain folder: `--labels folders`, label-folders.ts, or a
 * Gmail server read outside Gmail mode, drivers/imap/gmail.ts) hold messages that are also in All
 * Mail, so every message copied into one is an extra copy. It only notes which folders those are;
 * `count` sums what the run copied into them (RunReport.perFolder), undefined when there were none.
 */
export class LabelCopies extends SourceWrapper {
  private readonly paths = new Set<string>();

  override async mailboxes(): Promise<MailboxInfo[]> {
    const all = await this.inner.mailboxes();
    for (const m of all) if (m.labelCopy !== undefined) this.paths.add(m.path);
    return all;
  }

  count(perFolder: ReadonlyMap<string, { messages: number }>): number | undefined {
    if (this.paths.size === 0) return undefined;
    let n = 0;
    for (const p of this.paths) n += perFolder.get(p)?.messages ?? 0;
    return n;
  }
}
