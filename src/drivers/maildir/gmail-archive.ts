import type { MessageMeta } from '../../domain/message.js';
import type { LabelRecord } from '../../state/checkpoint.js';

/**
 * A Maildir archive written in Gmail mode (labels.ts), read back in Gmail mode by MaildirSource
 * (`restore` into Gmail, or with `--labels keywords`): each message once, with its labels, as the
 * IMAP source gives them in Gmail mode (drivers/imap/gmail.ts).
 *
 * - The labelled folder is the one whose record in the archive's state holds labels (All Mail);
 *   it is listed `labelled`, with the \All role, and each of its messages carries the labels the
 *   state records for it (by the U= of its file name), with its Gmail ids.
 * - A label folder is a folder whose every entry is a hard link to a file of the labelled folder
 *   (the same unique base). Its label (`labelsOfViews`): the one the state's places record for it
 *   (SinkPlaces records it when a backup makes the folder); else, in an archive written before
 *   that was recorded: INBOX is `\Inbox`; a folder whose name,
 *   with "/" between levels, is a label every one of its messages carries shows that label; the
 *   others (Sent Mail, Starred, Important, Drafts) show the one label all their messages carry
 *   that no other folder shows, found by elimination. A folder left with no label or with two
 *   candidates (two labels on exactly the same messages) stays a plain folder, copied as such.
 * - Spam and Trash hold files of their own: plain folders, as in Gmail mode.
 */

/** The labels (and Gmail ids) of a labelled folder's message, for its MessageMeta. */
export function labelMeta(r: LabelRecord | undefined): Pick<MessageMeta, 'labels' | 'globalId' | 'threadId'> {
  return {
    labels: [...(r?.labels ?? [])].sort(),
    ...(r?.globalId === undefined ? {} : { globalId: r.globalId }),
    ...(r?.threadId === undefined ? {} : { threadId: r.threadId }),
  };
}

export interface View {
  readonly delimiter: string;
  /** The recorded labels of each message the folder links. */
  readonly sets: readonly (readonly string[])[];
}

/**
 * Folder path -> the label it shows, for the folders that show one (see above); `recorded`: the
 * labels the state's places record (a backup records each label folder's label when it makes
 * it), taken as they are, the rest told by name and elimination (an archive of an older version).
 */
export function labelsOfViews(views: ReadonlyMap<string, View>, recorded: ReadonlyMap<string, string> = new Map()): Map<string, string> {
  const out = new Map<string, string>();
  const claimed = new Set<string>();
  for (const [path, label] of recorded) {
    if (!views.has(path)) continue;
    out.set(path, label);
    claimed.add(label);
  }
  const common = (v: View): string[] => {
    const [first = [], ...rest] = v.sets;
    return first.filter((l) => rest.every((s) => s.includes(l)));
  };
  const assign = (path: string, label: string): void => {
    out.set(path, label);
    claimed.add(label);
  };
  for (const [path, v] of views) {
    if (out.has(path)) continue;
    const name = path.toUpperCase() === 'INBOX' ? '\\Inbox' : v.delimiter === '' ? path : path.split(v.delimiter).join('/');
    if (common(v).includes(name) && !claimed.has(name)) assign(path, name);
  }
  for (let progress = true; progress; ) {
    progress = false;
    for (const [path, v] of views) {
      if (out.has(path)) continue;
      const left = common(v).filter((l) => l.startsWith('\\') && !claimed.has(l));
      if (left.length !== 1) continue;
      assign(path, left[0] as string);
      progress = true;
    }
  }
  return out;
}
