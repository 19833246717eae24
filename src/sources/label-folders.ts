import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import { LabelViews } from './label-views.js';

/**
 * `--labels folders` from a Gmail-mode archive (restore into a server without labels): each label
 * becomes a folder holding a copy of every message with that label, as Gmail's own IMAP shows
 * them, and All Mail holds every message once. A wrapper around the Gmail-mode source
 * (label-views.ts), so a Maildir and an mbox archive give the same folders (an mbox has no file
 * per label, a Maildir's label folders are links) and the same count of copies:
 *
 * - `mailboxes()`: All Mail a plain folder (its \All role kept); each folder showing a label
 *   (INBOX, Sent Mail, Starred, Important, Drafts, user labels) a plain folder marked `labelCopy`
 *   (so the run counts what it copies there as extra copies, RunReport.labelCopies); the rest
 *   (Spam, Trash, a folder whose label could not be told) as they are.
 * - A view's messages are All Mail's that carry its label, without their labels (the target has
 *   no labels; the copies in the label folders say them).
 */
export class LabelFolders extends LabelViews {
  /** View path -> the label it shows; All Mail shows all. */
  private readonly shows = new Map<string, string | undefined>();

  protected show(all: readonly MailboxInfo[]): MailboxInfo[] {
    return all.map((m) => {
      if (m.labelled === true) {
        const { labelled: _l, ...plain } = m;
        this.views.set(m.path, m);
        this.shows.set(m.path, undefined);
        return plain;
      }
      if (m.label === undefined) return m;
      const { label, ...plain } = m;
      this.views.set(m.path, m);
      this.shows.set(m.path, label);
      return { ...plain, labelCopy: label };
    });
  }

  protected holds(m: MessageMeta, path: string): boolean {
    const label = this.shows.get(path);
    return label === undefined || (m.labels ?? []).includes(label);
  }

  protected as(m: MessageMeta, mailbox: MailboxInfo): MessageMeta {
    const { labels: _l, ...rest } = m;
    return { ...rest, mailbox };
  }
}
