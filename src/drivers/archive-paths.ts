import { join } from 'node:path';
import { pathComponents, isInbox, type MailboxInfo } from '../domain/message.js';

/**
 * Mailbox path -> file-system names. Names stay Unicode (Dovecot reads them with the UTF8
 * mail_location parameter). Characters a file name cannot hold, or that the layout uses itself, are
 * escaped as \NN hex, the convention of Dovecot's listescape plugin, so the mapping is reversible.
 */
export function escapeComponent(name: string, reserved: string): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const ch = name[i] as string;
    const special = ch === '/' || ch === '\\' || ch === '\0' || reserved.includes(ch) || (i === 0 && (ch === '~' || ch === '.'));
    out += special ? `\\${ch.charCodeAt(0).toString(16).padStart(2, '0')}` : ch;
  }
  if (out === '' ) return '\\00';
  return out;
}

export function unescapeComponent(name: string): string {
  return name.replace(/\\([0-9a-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Components of a mailbox with INBOX normalised, e.g. "inbox" -> ["INBOX"]. */
export function components(mailbox: Pick<MailboxInfo, 'path' | 'delimiter'>): string[] {
  if (isInbox(mailbox.path)) return ['INBOX'];
  const parts = pathComponents(mailbox);
  if (parts.length > 1 && isInbox(parts[0] as string)) parts[0] = 'INBOX';
  return parts;
}

/** Maildir++ (INBOX is the root, `.A.B` beside it) or fs layout (`A/B`). */
export function maildirFolderDir(root: string, layout: 'maildir++' | 'fs', mailbox: Pick<MailboxInfo, 'path' | 'delimiter'>): string {
  const parts = components(mailbox);
  if (parts.length === 1 && parts[0] === 'INBOX') return root;
  if (layout === 'fs') return join(root, ...parts.map((p) => escapeComponent(p, '')));
  return join(root, `.${parts.map((p) => escapeComponent(p, '.')).join('.')}`);
}

/** Thunderbird's layout: folder "A/B" is the file `A.sbd/B`, so a folder may hold mail and children. */
export function mboxFolderFile(root: string, mailbox: Pick<MailboxInfo, 'path' | 'delimiter'>): string {
  const parts = components(mailbox).map((p) => escapeComponent(p, ''));
  const leaf = parts.pop() as string;
  return join(root, ...parts.map((p) => `${p}.sbd`), leaf);
}
