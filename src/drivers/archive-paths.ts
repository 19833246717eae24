import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pathComponents, isInbox, type MailboxInfo } from '../domain/message.js';

/**
 * Mailbox path -> file-system names. Names stay Unicode (Dovecot reads them with the UTF8
 * mail_location parameter). Characters a file name cannot hold, or that the layout uses itself, are
 * escaped as \NN hex, one escape per UTF-8 byte, the convention of Dovecot's listescape plugin, so
 * the mapping is reversible. `escaped` more characters from the start of the name are escaped as
 * well: a variant of the same name, which unescapes to it exactly, for a folder whose plain form is
 * taken (archive-names.ts).
 */
export function escapeComponent(name: string, reserved: string, escaped = 0): string {
  const out = escapedChars(name, reserved, escaped).join('');
  if (out === '') return '\\00';
  return out;
}

/** Each character of `name` as escapeComponent writes it. */
function escapedChars(name: string, reserved: string, escaped: number): string[] {
  const out: string[] = [];
  for (const ch of name) {
    const i = out.length;
    const special = i < escaped || ch === '/' || ch === '\\' || ch === '\0' || reserved.includes(ch) || (i === 0 && (ch === '~' || ch === '.'));
    out.push(special ? hexBytes(ch) : ch);
  }
  return out;
}

/** The longest file name Linux file systems take (NAME_MAX, bytes), and the longest path (PATH_MAX, with its NUL). */
export const NAME_MAX = 255;
export const PATH_MAX = 4096;

/** `~` and 16 hex digits: what a shortened component ends with. */
const HASH_CHARS = 17;
/**
 * The most bytes a shortened component takes: enough of a prefix to recognise the folder, and
 * room left for its parents and children (in Maildir++ a folder and all its parents are one name)
 * and for deep trees within PATH_MAX.
 */
export const SHORT_MAX = 100;

/**
 * A component whose escaped form is longer than `budget` bytes (NAME_MAX, less what the layout
 * adds around it), shortened to at most SHORT_MAX bytes (or the budget, when less): the escaped
 * form's first characters that fit (never cut inside a character or its escape), `~`, and the first 16 hex digits of the sha256 of the name's UTF-8
 * (with `variant` after a NUL, for a variant whose shortened form is taken: archive-names.ts).
 * Not reversible: the name is recorded in the state's places and the archive's names file
 * (state/names-file.ts). Undefined when the budget leaves no room for a character before the hash.
 */
export function shortComponent(name: string, reserved: string, budget: number, variant = 0): string | undefined {
  const hash = createHash('sha256').update(variant === 0 ? name : `${name}\0${variant}`).digest('hex').slice(0, HASH_CHARS - 1);
  let prefix = '';
  let bytes = 0;
  for (const piece of escapedChars(name, reserved, 0)) {
    const n = Buffer.byteLength(piece);
    if (bytes + n + HASH_CHARS > Math.min(budget, SHORT_MAX)) break;
    prefix += piece;
    bytes += n;
  }
  return prefix === '' ? undefined : `${prefix}~${hash}`;
}

function hexBytes(ch: string): string {
  let out = '';
  for (const b of Buffer.from(ch, 'utf8')) out += `\\${b.toString(16).padStart(2, '0')}`;
  return out;
}

/**
 * The name an escaped component stands for. Escaped bytes are read as UTF-8 (as listescape writes
 * them); a run that is not valid UTF-8 (another writer's) is read one character per byte.
 */
export function unescapeComponent(name: string): string {
  return name.replace(/(?:\\[0-9a-fA-F]{2})+/g, (run) => {
    const bytes = Buffer.from(run.split('\\').slice(1).map((h) => parseInt(h, 16)));
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return String.fromCharCode(...bytes);
    }
  });
}

/**
 * The key two names share when a case-insensitive or normalising file system (macOS, Windows) would
 * store them as one: case folded (upper then lower, so ß and SS meet) and NFC.
 */
export function foldName(name: string): string {
  return name.toUpperCase().toLowerCase().normalize('NFC');
}

/** Components of a mailbox with INBOX normalised, e.g. "inbox" -> ["INBOX"]. */
export function components(mailbox: Pick<MailboxInfo, 'path' | 'delimiter'>): string[] {
  if (isInbox(mailbox.path)) return ['INBOX'];
  const parts = pathComponents(mailbox);
  if (parts.length > 1 && isInbox(parts[0] as string)) parts[0] = 'INBOX';
  return parts;
}

export type ArchiveLayout = 'maildir++' | 'fs' | 'mbox';

/** What a layout escapes besides '/', '\', NUL and a leading '~' or '.': Maildir++ joins with '.'. */
export function reservedChars(layout: ArchiveLayout): string {
  return layout === 'maildir++' ? '.' : '';
}

/**
 * The plain (today's, default) on-disk forms of a mailbox's components; [] for a Maildir's INBOX,
 * which is the root itself.
 */
export function defaultPlace(layout: ArchiveLayout, mailbox: Pick<MailboxInfo, 'path' | 'delimiter'>): string[] {
  const parts = components(mailbox);
  if (layout !== 'mbox' && parts.length === 1 && parts[0] === 'INBOX') return [];
  return parts.map((p) => (p === 'INBOX' ? p : escapeComponent(p, reservedChars(layout))));
}

/** Where a place (on-disk forms, see archive-names.ts) lies: a Maildir directory or an mbox file. */
export function placePath(root: string, layout: ArchiveLayout, place: readonly string[]): string {
  if (layout === 'mbox') {
    const dirs = place.slice(0, -1).map((p) => `${p}.sbd`);
    return join(root, ...dirs, place[place.length - 1] ?? 'INBOX');
  }
  if (place.length === 0) return root;
  if (layout === 'fs') return join(root, ...place);
  return join(root, `.${place.join('.')}`);
}

/** Maildir++ (INBOX is the root, `.A.B` beside it) or fs layout (`A/B`), at the plain names. */
export function maildirFolderDir(root: string, layout: 'maildir++' | 'fs', mailbox: Pick<MailboxInfo, 'path' | 'delimiter'>): string {
  return placePath(root, layout, defaultPlace(layout, mailbox));
}

/** Thunderbird's layout: folder "A/B" is the file `A.sbd/B`, so a folder may hold mail and children. */
export function mboxFolderFile(root: string, mailbox: Pick<MailboxInfo, 'path' | 'delimiter'>): string {
  return placePath(root, 'mbox', defaultPlace('mbox', mailbox));
}
