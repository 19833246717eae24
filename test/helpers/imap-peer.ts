import type net from 'node:net';
import { lineServer, type LineServer } from './line-server.js';
import { encodeMailboxName } from '../../scripts/dev/seed.js';
import { fromMutf7 } from './mutf7.js';
import { dribble, endless } from './pop3-peer.js';

/**
 * A small scripted IMAP4rev1 server on 127.0.0.1 (RFC 3501), for what Dovecot cannot be made to
 * do: one read-only INBOX of `messages` (UIDs 1..n, UIDVALIDITY 1), LOGIN with any password,
 * LIST, EXAMINE/SELECT, UID SEARCH (ALL, UID <set>), UID FETCH of UID FLAGS INTERNALDATE
 * RFC822.SIZE, BODY.PEEK[] and BODY.PEEK[HEADER], LOGOUT. Its one fault is the point: `leaveOut` UIDs are left out of
 * the UID FETCH replies that ask for bodies (`body`) or for metadata only (`meta`), while SEARCH
 * still finds them, as a faulty server or proxy does; with `expungeLeftOut` they were expunged
 * meanwhile instead (SEARCH no longer finds them: the honest case). Everything else is answered as
 * the RFC says. Hostile variants (issue 17): `folders`, more mailboxes listed (as literals, so a
 * name may hold a newline; in modified UTF-7, RFC 3501 §5.1.3), whose SELECT is refused
 * unless given with messages of their own (then they are folders like INBOX: a 5,000-character
 * or CJK name); `internalDate`, the INTERNALDATE sent for
 * every message (default a valid one), e.g. `garbage`; `uidValidity`, the UIDVALIDITY token sent
 * (default `1`; `''` sends none at all), and `uids`, the UID of each message (default 1..n), so that
 * a test can renumber the folder between runs as a server does after a UIDVALIDITY change.
 * `hostile`: one answer that never ends
 * (an endless LIST, an endless UID SEARCH line, a LIST answer trickled a byte at a time) or a body
 * literal far larger than the RFC822.SIZE announced for it.
 */
export interface ImapPeerOptions {
  messages: readonly Buffer[];
  /** UIDs left out of UID FETCH replies: of body fetches, of metadata-only fetches. */
  leaveOut?: { body?: readonly number[]; meta?: readonly number[] };
  /** The UIDs left out of a body fetch were expunged meanwhile: SEARCH no longer finds them. */
  expungeLeftOut?: boolean;
  /**
   * More mailboxes listed after INBOX (sent as literals): a name alone is answered NO on
   * SELECT/EXAMINE; one with `messages` holds them (UIDs 1..n, UIDVALIDITY 1).
   */
  folders?: readonly (string | PeerFolder)[];
  /** The INTERNALDATE of every message, sent as given inside the quotes. */
  internalDate?: string;
  /** The UIDVALIDITY token sent on SELECT/EXAMINE, as given (`abc`, a 23-digit number); `''`: none sent. */
  uidValidity?: string;
  /** The UID of each message, ascending (default 1..n). */
  uids?: readonly number[];
  hostile?: Hostile;
}

export interface PeerFolder {
  readonly name: string;
  readonly messages: readonly Buffer[];
}

/**
 * One answer that never ends: `list`, `* LIST` lines for ever; `search`, one `* SEARCH` line that
 * never ends; `trickle`, the LIST answer one byte every `everyMs`; `literal`, the BODY[] literal
 * of message `uid` announced (in `{n}`) and sent as `bytes` bytes, its RFC822.SIZE the real one.
 */
export type Hostile =
  | { kind: 'list' }
  | { kind: 'search' }
  | { kind: 'trickle'; everyMs: number }
  | { kind: 'literal'; uid: number; bytes: number };

/** Send `bytes` bytes of `x\r\n` lines, paced by the socket, then `tail`. */
function flood(sock: net.Socket, bytes: number, tail: string): void {
  const chunk = Buffer.alloc(64 << 10, 'x\r\n');
  let left = bytes;
  const pump = (): void => {
    while (!sock.destroyed && left > 0) {
      const piece = chunk.subarray(0, Math.min(left, chunk.length));
      left -= piece.length;
      if (!sock.write(piece)) return void sock.once('drain', pump);
    }
    if (!sock.destroyed) sock.write(tail);
  };
  pump();
}

export type ImapPeer = LineServer;

/** The mailbox argument of SELECT/EXAMINE: an atom or a quoted string (RFC 3501 §4.3), decoded. */
function mailboxArg(command: string): string {
  const arg = command.slice(command.indexOf(' ') + 1).trim();
  const quoted = /^"((?:[^"\\]|\\.)*)"/.exec(arg);
  return fromMutf7(quoted === null ? (arg.split(' ')[0] ?? '') : (quoted[1] as string).replace(/\\(.)/g, '$1'));
}

/** One mailbox's messages, by UID. */
interface Box {
  readonly uidList: readonly number[];
  readonly byUid: Map<number, Buffer>;
  readonly max: number;
}

function boxOf(messages: readonly Buffer[], uids?: readonly number[]): Box {
  const uidList = uids ?? messages.map((_, i) => i + 1);
  return { uidList, byUid: new Map(uidList.map((u, i) => [u, messages[i] as Buffer])), max: Math.max(0, ...uidList) };
}

const DATE = '01-Jan-2024 10:00:00 +0000';

/** The UIDs of a sequence set (RFC 3501 §9 sequence-set) among 1..max; `*` is max. */
export function uidsOf(set: string, max: number): number[] {
  const out = new Set<number>();
  for (const part of set.split(',')) {
    const [a = '', b] = part.split(':');
    const lo = a === '*' ? max : Number(a);
    const hi = b === undefined ? lo : b === '*' ? max : Number(b);
    for (let u = Math.min(lo, hi); u <= Math.max(lo, hi) && u <= max; u++) if (u >= 1) out.add(u);
  }
  return [...out].sort((x, y) => x - y);
}

export async function imapPeer(opts: ImapPeerOptions): Promise<ImapPeer> {
  const inbox = boxOf(opts.messages, opts.uids);
  const extra = (opts.folders ?? []).map((f) => (typeof f === 'string' ? { name: f } : { name: f.name, box: boxOf(f.messages) }));
  /** The mailbox each connection has selected (INBOX until a SELECT says otherwise). */
  const selected = new WeakMap<net.Socket, Box>();
  const boxIn = (sock: net.Socket): Box => selected.get(sock) ?? inbox;
  /** The UIDs of `set` the selected folder holds (`*` is the highest). */
  const held = (box: Box, set: string): number[] => uidsOf(set, box.max).filter((u) => box.byUid.has(u));
  const validity = opts.uidValidity ?? '1';
  const expunged = new Set<number>();
  const answer = (sock: net.Socket, tag: string, command: string): void => {
    const verb = (command.split(' ')[0] ?? '').toUpperCase();
    const ok = (text: string): void => void sock.write(`${tag} OK ${text}\r\n`);
    switch (verb) {
      case 'CAPABILITY':
        sock.write('* CAPABILITY IMAP4rev1\r\n');
        return ok('CAPABILITY completed');
      case 'NOOP':
        return ok('NOOP completed');
      case 'LOGIN':
        return ok('[CAPABILITY IMAP4rev1] LOGIN completed');
      case 'LIST':
        if (opts.hostile?.kind === 'list' && !/""\s*$/.test(command)) return endless(sock, Buffer.from('* LIST (\\HasNoChildren) "/" "spam-folder-name-0123456789"\r\n'.repeat(512)));
        if (opts.hostile?.kind === 'trickle' && !/""\s*$/.test(command)) return dribble(sock, Buffer.from('* LIST (\\HasNoChildren) "/" INBOX\r\n'), opts.hostile.everyMs);
        if (/""\s*$/.test(command)) sock.write('* LIST (\\Noselect) "/" ""\r\n');
        else {
          sock.write('* LIST (\\HasNoChildren) "/" INBOX\r\n');
          for (const { name } of extra) {
            const wire = encodeMailboxName(name);
            sock.write(`* LIST (\\HasNoChildren) "/" {${Buffer.byteLength(wire)}}\r\n${wire}\r\n`);
          }
        }
        return ok('LIST completed');
      case 'SELECT':
      case 'EXAMINE': {
        const name = mailboxArg(command);
        const box = name.toUpperCase() === 'INBOX' ? inbox : extra.find((f) => f.name === name)?.box;
        if (box === undefined) return void sock.write(`${tag} NO [NONEXISTENT] no such mailbox\r\n`);
        selected.set(sock, box);
        sock.write(`* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* ${box.uidList.length} EXISTS\r\n* 0 RECENT\r\n`);
        if (validity !== '') sock.write(`* OK [UIDVALIDITY ${validity}] UIDs valid\r\n`);
        sock.write(`* OK [UIDNEXT ${box.max + 1}] next UID\r\n`);
        return ok(`[READ-ONLY] ${verb} completed`);
      }
      case 'UID':
        return uid(sock, tag, command.slice(4));
      case 'LOGOUT':
        sock.write('* BYE logging out\r\n');
        ok('LOGOUT completed');
        sock.end();
        return;
      default:
        sock.write(`${tag} BAD unknown command\r\n`);
    }
  };
  const uid = (sock: net.Socket, tag: string, command: string): void => {
    const [verb = '', ...args] = command.split(' ');
    const box = boxIn(sock);
    if (verb.toUpperCase() === 'SEARCH') {
      if (opts.hostile?.kind === 'search') {
        sock.write('* SEARCH');
        return endless(sock, Buffer.from(' 1'.repeat(32 << 10)));
      }
      // ALL, or UID <set> (RFC 3501 6.4.4); nothing else is asked of this peer.
      const i = args.findIndex((a) => a.toUpperCase() === 'UID');
      const found = held(box, i >= 0 ? (args[i + 1] ?? '') : '1:*').filter((u) => box !== inbox || !expunged.has(u));
      sock.write(`* SEARCH${found.map((u) => ` ${u}`).join('')}\r\n${tag} OK SEARCH completed\r\n`);
      return;
    }
    if (verb.toUpperCase() !== 'FETCH') {
      sock.write(`${tag} BAD unknown UID command\r\n`);
      return;
    }
    const items = args.slice(1).join(' ').toUpperCase();
    const body = items.includes('BODY.PEEK[]') || items.includes('BODY[]');
    const header = items.includes('BODY.PEEK[HEADER]');
    const leave = new Set((box !== inbox ? [] : body ? opts.leaveOut?.body : opts.leaveOut?.meta) ?? []);
    for (const u of held(box, args[0] ?? '')) {
      if (box === inbox && expunged.has(u)) continue;
      if (leave.has(u)) {
        if (body && opts.expungeLeftOut === true) expunged.add(u);
        continue;
      }
      const raw = box.byUid.get(u) as Buffer;
      const seq = box.uidList.indexOf(u) + 1;
      const head = `* ${seq} FETCH (UID ${u} FLAGS () INTERNALDATE "${opts.internalDate ?? DATE}" RFC822.SIZE ${raw.length}`;
      const h = opts.hostile;
      if (body && h?.kind === 'literal' && h.uid === u) {
        sock.write(`${head} BODY[] {${h.bytes}}\r\n`);
        // The rest of this answer waits for the literal; nothing else is sent on this socket.
        return flood(sock, h.bytes, `)\r\n${tag} OK FETCH completed\r\n`);
      }
      if (body) sock.write(Buffer.concat([Buffer.from(`${head} BODY[] {${raw.length}}\r\n`), raw, Buffer.from(')\r\n')]));
      else if (header) {
        const end = raw.indexOf('\r\n\r\n');
        const block = end < 0 ? raw : raw.subarray(0, end + 4);
        sock.write(Buffer.concat([Buffer.from(`${head} BODY[HEADER] {${block.length}}\r\n`), block, Buffer.from(')\r\n')]));
      } else sock.write(`${head})\r\n`);
    }
    sock.write(`${tag} OK FETCH completed\r\n`);
  };
  return lineServer((line, sock) => {
    const [tag = '*', ...rest] = line.split(' ');
    answer(sock, tag, rest.join(' '));
  }, '* OK [CAPABILITY IMAP4rev1] scripted peer ready');
}
