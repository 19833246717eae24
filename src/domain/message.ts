/**
 * The words of the domain: mailbox, message, flag. No library type leaks past this module;
 * Sources translate their library's objects into these, Sinks read only these.
 */
export interface MailboxInfo {
  /** Unicode path as the source names it, components joined by `delimiter` (IMAP: decoded from modified UTF-7). */
  readonly path: string;
  /** Hierarchy delimiter of the source ("/" or "."); "" for a flat source such as POP3. */
  readonly delimiter: string;
  /**
   * IMAP UIDVALIDITY; ids are stable only while it is unchanged. Undefined for POP3 (UIDL is global).
   * Below zero: the server gave none usable, and this is a stand-in for one run only
   * (drivers/imap/uid-validity.ts): it never equals what an earlier run recorded.
   */
  readonly uidValidity?: bigint;
  /** RFC 6154 role (\Sent, \Drafts, \Trash, \Junk, \Archive, \All, \Flagged) when the server says so. */
  readonly specialUse?: string;
  /** \Noselect container: exists only as a parent, holds no messages. */
  readonly noSelect?: boolean;
  /**
   * A label shown as a folder (Gmail with X-GM-EXT-1): its messages are those of the `labelled`
   * folder that carry this label (MessageMeta.labels), so it is never fetched on its own; a sink
   * that keeps labels makes the folder from them. The label as Gmail names it: `\Inbox`,
   * `\Sent`, `\Starred`, `\Important`, `\Draft`, or a user label (`Work/Projects`).
   */
  readonly label?: string;
  /** Its messages carry their labels (MessageMeta.labels): Gmail's All Mail in Gmail mode. */
  readonly labelled?: boolean;
  /**
   * A folder that shows this label copied as a plain folder (`--labels folders` into a server
   * without labels): its messages are also in All Mail, so each one copied is an extra copy
   * (RunReport.labelCopies).
   */
  readonly labelCopy?: string;
}

export interface MessageMeta {
  readonly mailbox: MailboxInfo;
  /** IMAP UID | POP3 UIDL | Maildir unique name | mbox offset: stable while uidValidity holds. */
  readonly id: string;
  /** Size on the wire (RFC822.SIZE, CRLF) when known: drives the byte budget and batching. */
  readonly size?: number;
  /** System flags (\Seen \Answered \Flagged \Deleted \Draft) and keywords, as IMAP spells them. */
  readonly flags: ReadonlySet<string>;
  readonly internalDate?: Date;
  /**
   * The labels of a message of a `labelled` folder (Gmail X-GM-LABELS, decoded to Unicode, sorted):
   * each names the folder that shows it (MailboxInfo.label). Undefined outside Gmail mode.
   */
  readonly labels?: readonly string[];
  /** The message's id across every folder of the account (Gmail X-GM-MSGID), when the source has one. */
  readonly globalId?: string;
  /** Its conversation's id (Gmail X-GM-THRID), when the source has one. */
  readonly threadId?: string;
}

export const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'] as const;

export function isKeyword(flag: string): boolean {
  return !flag.startsWith('\\');
}

/** Split a mailbox path into its components (Unicode). INBOX is always the single component "INBOX". */
export function pathComponents(mailbox: Pick<MailboxInfo, 'path' | 'delimiter'>): string[] {
  if (mailbox.delimiter === '') return [mailbox.path];
  return mailbox.path.split(mailbox.delimiter);
}

export function isInbox(path: string): boolean {
  return path.toUpperCase() === 'INBOX';
}

/** Parents before children, INBOX first: compare component by component. */
export function compareMailboxes(a: MailboxInfo, b: MailboxInfo): number {
  const ai = isInbox(a.path);
  const bi = isInbox(b.path);
  if (ai !== bi) return ai ? -1 : 1;
  const pa = pathComponents(a);
  const pb = pathComponents(b);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] as string;
    const y = pb[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}
