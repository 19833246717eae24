import { createHash } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * Maildir file names (https://cr.yp.to/proto/maildir.html, Dovecot's and mbsync's extensions):
 *   <sec>.M<usec>P<pid>Q<seq>.<host>,S=<size>,W=<wire size>,U=<uid>:2,<info>
 * S= is the exact file size and W= the size once sent with CRLF line ends (Dovecot's "virtual
 * size": every LF not after a CR counts two), both as Dovecot writes and trusts them; W= lets a
 * reader learn the wire size without reading the file. U= is the source id (as mbsync does) so
 * that a run killed between rename and checkpoint finds its message again. The info part holds the system
 * flags as letters in ASCII order and keywords as the lowercase letters that the folder's
 * `dovecot-keywords` file assigns (index 0 = 'a').
 */
const FLAG_LETTER: Record<string, string> = {
  '\\Draft': 'D',
  '\\Flagged': 'F',
  '\\Answered': 'R',
  '\\Seen': 'S',
  '\\Deleted': 'T',
};
const LETTER_FLAG: Record<string, string> = Object.fromEntries(Object.entries(FLAG_LETTER).map(([f, l]) => [l, f]));

let seq = 0;
const host = hostname().replace(/\//g, '\\057').replace(/:/g, '\\072').replace(/,/g, '\\054');

/** A unique base name (without the size, id and info parts). */
export function uniqueBase(now: Date = new Date()): string {
  const ms = now.getTime();
  const sec = Math.floor(ms / 1000);
  const usec = (ms % 1000) * 1000 + (seq % 1000);
  seq++;
  return `${sec}.M${usec}P${process.pid}Q${seq}.${host}`;
}

/** Info letters for a set of flags; `keywordLetter` maps a keyword to its letter or undefined when none is free. */
export function infoOf(flags: Iterable<string>, keywordLetter: (kw: string) => string | undefined): string {
  const letters = new Set<string>();
  for (const f of flags) {
    const sys = FLAG_LETTER[f];
    if (sys !== undefined) letters.add(sys);
    else if (!f.startsWith('\\')) {
      const l = keywordLetter(f);
      if (l !== undefined) letters.add(l);
    }
  }
  return [...letters].sort().join('');
}

/**
 * Ids (POP3 UIDLs may hold any character a server sends) are %-escaped where a name cannot hold
 * them (and '#', which starts a hashed field). An escaped id longer than MAX_ID_FIELD bytes (a
 * 250-character UIDL, 70 '%' signs: the name would pass the 255-byte limit) is carried as
 * `#<sha256 of the id, 32 hex>` instead: the state records the id itself, and a folder's `known`
 * matches the hash (see idField).
 */
const MAX_ID_FIELD = 100;

function escapeId(id: string): string {
  return id.replace(/[%/:,#\\\s\x00-\x1f\x7f]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** What the U= field holds for `id`: escaped, or `#hash` when that is too long. */
export function idField(id: string): string {
  const escaped = escapeId(id);
  if (Buffer.byteLength(escaped) <= MAX_ID_FIELD) return escaped;
  return `#${createHash('sha256').update(id, 'utf8').digest('hex').slice(0, 32)}`;
}

function unescapeId(id: string): string {
  return id.replace(/%([0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

export function fileName(base: string, size: number, wireSize: number, id: string | undefined, info: string): string {
  const idPart = id === undefined ? '' : `,U=${idField(id)}`;
  return `${base},S=${size},W=${wireSize}${idPart}:2,${info}`;
}

export interface ParsedName {
  base: string;
  size?: number;
  /** W=: the size on the wire (CRLF), when the writer recorded it. */
  wireSize?: number;
  uid?: string;
  info: string;
}

export function parseName(name: string): ParsedName {
  const colon = name.indexOf(':2,');
  const head = colon === -1 ? name : name.slice(0, colon);
  const info = colon === -1 ? '' : name.slice(colon + 3);
  const [base = head, ...fields] = head.split(',');
  const parsed: ParsedName = { base, info };
  for (const f of fields) {
    if (f.startsWith('S=')) parsed.size = sizeField(f);
    else if (f.startsWith('W=')) parsed.wireSize = sizeField(f);
    else if (f.startsWith('U=')) {
      // A hashed field stays as it is (`#...`): it is matched with idField, never unescaped.
      const u = f.slice(2);
      parsed.uid = u.startsWith('#') ? u : unescapeId(u);
    }
  }
  return parsed;
}

/** A size field's number, or undefined when it is not one (another program's name). */
function sizeField(f: string): number | undefined {
  const v = f.slice(2);
  return /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}

/** Name with the U= field removed (used when a UIDVALIDITY change makes the ids stale). */
export function withoutUid(name: string): string {
  return name.replace(/,U=[^,:]+/, '');
}

/** Name carrying `uid` as its U= field (replacing any), before the info part. */
export function withUid(name: string, uid: string): string {
  const bare = withoutUid(name);
  const colon = bare.indexOf(':2,');
  const u = idField(uid);
  return colon === -1 ? `${bare},U=${u}` : `${bare.slice(0, colon)},U=${u}${bare.slice(colon)}`;
}

export function flagsOfInfo(info: string, keywordOf: (letter: string) => string | undefined): Set<string> {
  const flags = new Set<string>();
  for (const ch of info) {
    const sys = LETTER_FLAG[ch];
    if (sys !== undefined) flags.add(sys);
    else if (ch >= 'a' && ch <= 'z') {
      const kw = keywordOf(ch);
      if (kw !== undefined) flags.add(kw);
    }
  }
  return flags;
}
