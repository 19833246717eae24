import type { FetchMessageObject, FetchQueryObject } from 'imapflow';
import type { MailboxInfo, MessageMeta } from '../../domain/message.js';

/**
 * Gmail mode (developers.google.com/gmail/imap/imap-extensions). In Gmail a folder is a label, so
 * a message with three labels is in three folders, and an archived one only in All Mail (\All).
 * When the server announces X-GM-EXT-1 (never guessed from a host name or profile) and the
 * caller keeps labels, All Mail is the one folder whose messages are fetched, each with its
 * labels (X-GM-LABELS), X-GM-MSGID and X-GM-THRID; every other folder that shows a label (INBOX,
 * Sent, Starred, Important, Drafts, user labels) is handed on with the label it shows
 * (MailboxInfo.label) and is not fetched again. Spam and Trash, which All Mail does not hold, stay
 * plain folders. Without a listed All Mail (hidden from IMAP in Gmail's settings) there is no
 * Gmail mode: the folders are copied as folders, as for any server.
 */
export const GMAIL_EXTENSION = 'X-GM-EXT-1';

/** What a metadata FETCH of All Mail asks for on top of the usual items (imapflow adds X-GM-MSGID itself). */
export const LABEL_QUERY: FetchQueryObject = { labels: true, threadId: true };

/** Gmail's system labels by the RFC 6154 / RFC 8457 role of the folder that shows them. */
const SYSTEM_LABEL: Readonly<Record<string, string>> = {
  '\\Sent': '\\Sent',
  '\\Flagged': '\\Starred',
  '\\Important': '\\Important',
  '\\Drafts': '\\Draft',
};

/**
 * The folder list in Gmail mode, or undefined when it has no All Mail. `important` holds the
 * paths listed with \Important (RFC 8457; imapflow's specialUse does not know it).
 */
export function gmailFolders(mailboxes: readonly MailboxInfo[], important: ReadonlySet<string>): MailboxInfo[] | undefined {
  if (!mailboxes.some((m) => m.specialUse === '\\All' && m.noSelect !== true)) return undefined;
  return mailboxes.map((m): MailboxInfo => {
    if (m.noSelect === true) return m;
    if (m.specialUse === '\\All') return { ...m, labelled: true };
    if (m.specialUse === '\\Junk' || m.specialUse === '\\Trash') return m;
    if (m.path.toUpperCase() === 'INBOX') return { ...m, label: '\\Inbox' };
    const role = important.has(m.path) ? '\\Important' : m.specialUse;
    const system = role === undefined ? undefined : SYSTEM_LABEL[role];
    if (system !== undefined) return { ...m, label: system };
    // A user label is its folder's name, nested with "/" (Gmail's delimiter).
    return { ...m, label: m.delimiter === '' || m.delimiter === '/' ? m.path : m.path.split(m.delimiter).join('/') };
  });
}

/**
 * The folder list of a Gmail server read outside Gmail mode (folders copied as folders): each
 * folder that shows a label marked `labelCopy` (its messages are copies of All Mail's), or the
 * list as it is when it has no All Mail.
 */
export function labelCopyFolders(mailboxes: readonly MailboxInfo[], important: ReadonlySet<string>): MailboxInfo[] {
  const gmail = gmailFolders(mailboxes, important);
  if (gmail === undefined) return [...mailboxes];
  return gmail.map((m) => {
    const { label, labelled: _l, ...plain } = m;
    return label === undefined ? plain : { ...plain, labelCopy: label };
  });
}

/** The labels and Gmail ids of a fetched message, for its MessageMeta (labels sorted, Unicode). */
export function labelsOf(msg: Pick<FetchMessageObject, 'labels' | 'emailId' | 'threadId'>): Pick<MessageMeta, 'labels' | 'globalId' | 'threadId'> {
  return {
    labels: [...(msg.labels ?? [])].sort(),
    ...(msg.emailId === undefined ? {} : { globalId: msg.emailId }),
    ...(msg.threadId === undefined ? {} : { threadId: msg.threadId }),
  };
}
