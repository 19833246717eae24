import { MailferryError } from '../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import type { SinkFolder } from '../sinks/sink.js';
import type { FolderCheckpoint } from '../state/checkpoint.js';

/**
 * What the two archive Sinks share about Gmail labels (Gmail mode, drivers/imap/gmail.ts): the
 * folder a sink hands out for a label folder, and the record of each labelled message's labels
 * and Gmail ids in the folder's checkpoint (written in the commit that makes the message durable).
 */

/** What `open` returns for a label folder: the pipeline never fetches into it (its messages come with the labelled folder). */
export function labelFolder(mailbox: MailboxInfo): SinkFolder {
  return {
    mailbox,
    known: new Set(),
    needsRematch: false,
    async *fingerprints() {
      // a label folder holds nothing of its own to match
    },
    rebase: () => Promise.resolve(),
    begin: () => Promise.reject(new MailferryError('usage', `${mailbox.path} shows the label ${mailbox.label ?? ''}: its messages are written with the labelled folder`)),
  };
}

/**
 * Record the labels (and Gmail ids) `metas` were archived with; messages without labels are left
 * alone. `at` (mbox): where each message lies in the file, kept with its record.
 */
export function recordLabels(f: FolderCheckpoint, metas: readonly MessageMeta[], at?: ReadonlyMap<string, number>): void {
  for (const m of metas) {
    if (m.labels === undefined) continue;
    const offset = at?.get(m.id) ?? f.labels?.get(m.id)?.at;
    (f.labels ??= new Map()).set(m.id, {
      labels: [...m.labels],
      ...(m.globalId === undefined ? {} : { globalId: m.globalId }),
      ...(m.threadId === undefined ? {} : { threadId: m.threadId }),
      ...(offset === undefined ? {} : { at: offset }),
    });
  }
}
