import type net from 'node:net';
import { encodeMailboxName } from '../../scripts/dev/seed.js';
import { uidsOf } from './imap-peer.js';
import { fromMutf7 } from './mutf7.js';
import { lineServer, type LineServer } from './line-server.js';

/**
 * A Gmail stand-in on 127.0.0.1: a scripted IMAP4rev1 server (RFC 3501) with the parts of Gmail's
 * IMAP extensions a backup uses (developers.google.com/gmail/imap/imap-extensions):
 *
 * - CAPABILITY announces `X-GM-EXT-1` (unless `gmExt: false`, the same mailbox without it) and
 *   SPECIAL-USE; LIST shows `INBOX`, the `[Gmail]` container, `[Gmail]/All Mail` (\All),
 *   `Drafts` (\Drafts), `Important` (\Important), `Sent Mail` (\Sent), `Spam` (\Junk), `Starred`
 *   (\Flagged), `Trash` (\Trash) and every user label (parents of nested ones too), names in
 *   modified UTF-7 (RFC 3501 5.1.3) and quoted when they hold spaces, as Gmail sends them.
 * - A label is a folder: each folder holds the messages that carry its label (All Mail every
 *   message but those in Spam or Trash), with UIDs of its own (UIDVALIDITY per folder) assigned in
 *   the order messages joined it; a label added later gets the folder's next UID.
 * - UID FETCH answers UID FLAGS INTERNALDATE RFC822.SIZE, BODY.PEEK[] / BODY.PEEK[HEADER], and
 *   X-GM-LABELS (an astring list: `\Inbox`, `\Sent`, `\Starred`, `\Important`, `\Draft` with a
 *   backslash, user labels as mailbox names), X-GM-MSGID and X-GM-THRID (64-bit decimals) when
 *   X-GM-EXT-1 is on. A message's label list never holds the folder it is fetched from's own
 *   system label for All Mail (Gmail lists labels, not All Mail).
 * - FETCH by sequence number (as UID FETCH of the UIDs at those places), UID SEARCH ALL / UID <set>, EXAMINE/SELECT, LOGIN (any password), NOOP, LOGOUT.
 * - IDLE (RFC 2177, announced unless `idle: false`): `+ idling`, then an untagged EXISTS whenever
 *   `deliver` adds to the selected folder, until the client's DONE (answered with the IDLE's
 *   tagged OK); a NOOP also says EXISTS when the count grew since the client was last told.
 *
 * - As a target: UIDPLUS (APPEND answers APPENDUID), APPEND with a synchronizing literal (the
 *   message gets the label of the folder it went to; into Spam or Trash it is binned), CREATE of
 *   a user label, SUBSCRIBE, and UID STORE +X-GM-LABELS / -X-GM-LABELS (labels as astrings, user
 *   labels in modified UTF-7), which adds or takes off labels as Gmail does.
 * - Threads as a target, our approximation of what Gmail documents (it groups mail into
 *   conversations by itself; X-GM-THRID cannot be set over IMAP): an APPENDed message whose
 *   References or In-Reply-To names the Message-ID of a message already in the account joins that
 *   message's thread; any other starts a thread of its own (its id the message's X-GM-MSGID, as
 *   Gmail's thread ids are their first message's). Gmail also joins by Subject, which this does not.
 *
 * `bodies` counts the messages whose body was sent (BODY[] in a FETCH), for tests that check a
 * rerun downloads nothing; `setLabels` changes a message's labels, as the web interface would;
 * `refuseStores` answers a UID STORE of labels NO and applies nothing. `holdStores` leaves a UID STORE of labels unanswered and not applied (`heldStores` counts
 * them), so a test can kill a client between its APPEND and its STORE;
 * `messages` is the mailbox itself (what an APPEND added is there).
 */
export interface GmailMessage {
  raw: Buffer;
  /** Gmail's labels: `\Inbox`, `\Sent`, `\Starred`, `\Important`, `\Draft`, user labels. */
  labels: string[];
  /** In Spam or Trash (not in All Mail). */
  bin?: 'spam' | 'trash';
  flags?: string[];
  /** Its X-GM-THRID; by default made up (threads of two: messages 0 and 1, 2 and 3, ...). */
  thread?: string;
}

export interface GmailPeerOptions {
  messages: GmailMessage[];
  /** Announce X-GM-EXT-1 (default true). */
  gmExt?: boolean;
  /** Announce and speak IDLE (default true). */
  idle?: boolean;
}

export interface GmailPeer extends LineServer {
  /** How many message bodies were sent. */
  bodies: number;
  messages: GmailMessage[];
  setLabels(index: number, labels: string[]): void;
  /** While true, a UID STORE of labels is read and never answered (a client killed waiting for it). */
  holdStores: boolean;
  /** While true, a UID STORE of labels is refused (`NO`) and not applied. */
  refuseStores: boolean;
  /** How many UID STOREs of labels were held unanswered. */
  heldStores: number;
  /** A message arrives (as Gmail's delivery would, with its labels): sessions in IDLE are told. */
  deliver(m: GmailMessage): void;
}

const DATE = '01-Jan-2024 10:00:00 +0000';

/** The Gmail tests' mailbox: 0 archived only; 1-5 with 1 to 4 labels (nested, non-ASCII, with spaces); 6 Spam; 7 Trash; 8 a draft. */
export function gmailMailbox(): GmailMessage[] {
  const msg = (n: number, labels: string[], bin?: 'spam' | 'trash'): GmailMessage => ({
    raw: Buffer.from(`Message-ID: <m${n}@gmail.test>\r\nSubject: m${n}\r\n\r\nbody ${n}\r\n`),
    labels,
    ...(bin === undefined ? {} : { bin }),
    flags: n % 2 === 0 ? ['\\Seen'] : [],
  });
  return [
    msg(0, []),
    msg(1, ['\\Inbox']),
    msg(2, ['\\Important', '\\Inbox']),
    msg(3, ['\\Sent', 'Work/Projects', 'Rechnungen bezahlt']),
    msg(4, ['\\Inbox', '\\Starred', 'Reisen/Köln 2024', 'Work']),
    msg(5, ['\\Important', 'Reisen/Köln 2024', 'Rechnungen bezahlt', 'Work/Projects']),
    msg(6, [], 'spam'),
    msg(7, ['Work'], 'trash'),
    msg(8, ['\\Draft']),
  ];
}

interface Folder {
  path: string;
  attrs: string;
  uidValidity: number;
  /** Which messages (by index) the folder holds. */
  holds: (m: GmailMessage) => boolean;
  uidNext: number;
  uids: Map<number, number>;
}

const SYSTEM: readonly [string, string, string][] = [
  ['[Gmail]/All Mail', '\\All', ''],
  ['[Gmail]/Drafts', '\\Drafts', '\\Draft'],
  ['[Gmail]/Important', '\\Important', '\\Important'],
  ['[Gmail]/Sent Mail', '\\Sent', '\\Sent'],
  ['[Gmail]/Spam', '\\Junk', ''],
  ['[Gmail]/Starred', '\\Flagged', '\\Starred'],
  ['[Gmail]/Trash', '\\Trash', ''],
];

export async function gmailPeer(opts: GmailPeerOptions): Promise<GmailPeer> {
  const msgs = opts.messages;
  const gm = opts.gmExt !== false;
  const caps = `IMAP4rev1 SPECIAL-USE UIDPLUS${opts.idle === false ? '' : ' IDLE'}${gm ? ' X-GM-EXT-1' : ''}`;
  const folders: Folder[] = [];
  const add = (path: string, attrs: string, holds: (m: GmailMessage) => boolean): void => {
    folders.push({ path, attrs, uidValidity: 100 + folders.length, holds, uidNext: 1, uids: new Map() });
  };
  const live = (m: GmailMessage): boolean => m.bin === undefined;
  add('INBOX', '\\HasNoChildren', (m) => live(m) && m.labels.includes('\\Inbox'));
  for (const [path, use, label] of SYSTEM) {
    const holds =
      use === '\\All' ? live : use === '\\Junk' ? (m: GmailMessage) => m.bin === 'spam' : use === '\\Trash' ? (m: GmailMessage) => m.bin === 'trash' : (m: GmailMessage) => live(m) && m.labels.includes(label);
    add(path, `\\HasNoChildren ${use}`, holds);
  }
  const user = new Set<string>();
  for (const m of msgs) {
    for (const l of m.labels) {
      if (l.startsWith('\\')) continue;
      const parts = l.split('/');
      for (let i = 1; i <= parts.length; i++) user.add(parts.slice(0, i).join('/'));
    }
  }
  const addLabel = (l: string, attrs = '\\HasNoChildren'): void => add(l, attrs, (m) => live(m) && m.labels.includes(l));
  for (const l of [...user].sort()) addLabel(l, [...user].some((u) => u.startsWith(`${l}/`)) ? '\\HasChildren' : '\\HasNoChildren');
  /** Give every message that joined a folder its next UID; drop those that left. */
  const refresh = (f: Folder): void => {
    msgs.forEach((m, i) => {
      if (f.holds(m) && !f.uids.has(i)) f.uids.set(i, f.uidNext++);
      if (!f.holds(m)) f.uids.delete(i);
    });
  };
  folders.forEach(refresh);
  const byUid = (f: Folder): Map<number, number> => new Map([...f.uids].map(([i, u]) => [u, i]));

  /** An APPEND waiting for its literal (RFC 3501 4.3: `{n}`, answered with a continuation). */
  const appending = new WeakMap<net.Socket, { tag: string; head: string; size: number; got: string }>();
  /** Sessions in IDLE (RFC 2177), with the IDLE's tag. */
  const idling = new Map<net.Socket, string>();
  /** The selected folder's message count each session was last told (SELECT, EXISTS). */
  const told = new WeakMap<net.Socket, number>();
  /** An untagged EXISTS when the session's folder grew since it was last told. */
  const tell = (sock: net.Socket): void => {
    const f = selected.get(sock);
    if (f === undefined || (told.get(sock) ?? 0) >= f.uids.size) return;
    told.set(sock, f.uids.size);
    sock.write(`* ${f.uids.size} EXISTS\r\n`);
  };
  const peer = (await lineServer((line, sock) => {
    const idle = idling.get(sock);
    if (idle !== undefined) {
      // In IDLE the client sends nothing but DONE (RFC 2177 3).
      if (line.toUpperCase() !== 'DONE') return void sock.write('* BAD expected DONE\r\n');
      idling.delete(sock);
      return void sock.write(`${idle} OK IDLE terminated (Success)\r\n`);
    }
    const waiting = appending.get(sock);
    if (waiting !== undefined) {
      // The line server splits on CRLF: the literal's own line ends are put back.
      waiting.got += `${line}\r\n`;
      if (waiting.got.length < waiting.size + 2) return;
      appending.delete(sock);
      return append(sock, waiting.tag, waiting.head, Buffer.from(waiting.got.slice(0, waiting.size), 'latin1'));
    }
    const [tag = '*', ...rest] = line.split(' ');
    const literal = /^APPEND (.*) \{(\d+)\}$/i.exec(rest.join(' '));
    if (literal !== null) {
      appending.set(sock, { tag, head: literal[1] ?? '', size: Number(literal[2]), got: '' });
      sock.write('+ Ready for literal data\r\n');
      return;
    }
    answer(sock, tag, rest.join(' '));
  }, `* OK [CAPABILITY ${caps}] Gimap stand-in ready`)) as GmailPeer;
  peer.bodies = 0;
  peer.holdStores = false;
  peer.refuseStores = false;
  peer.heldStores = 0;
  peer.messages = msgs;
  peer.setLabels = (i, labels) => {
    (msgs[i] as GmailMessage).labels = labels;
    folders.forEach(refresh);
  };
  peer.deliver = (m) => {
    msgs.push(m);
    folders.forEach(refresh);
    for (const sock of idling.keys()) tell(sock);
  };

  const selected = new WeakMap<net.Socket, Folder>();
  const answer = (sock: net.Socket, tag: string, command: string): void => {
    const verb = (command.split(' ')[0] ?? '').toUpperCase();
    const ok = (text: string): void => void sock.write(`${tag} OK ${text}\r\n`);
    switch (verb) {
      case 'CAPABILITY':
        sock.write(`* CAPABILITY ${caps}\r\n`);
        return ok('Success');
      case 'NOOP':
      case 'CHECK':
        tell(sock);
        return ok('Success');
      case 'IDLE':
        if (opts.idle === false) return void sock.write(`${tag} BAD Unknown command\r\n`);
        idling.set(sock, tag);
        sock.once('close', () => idling.delete(sock));
        sock.write('+ idling\r\n');
        return tell(sock);
      case 'LOGIN':
        return ok(`[CAPABILITY ${caps}] authenticated (Success)`);
      case 'LIST':
      case 'LSUB':
        if (/""\s*$/.test(command)) sock.write(`* ${verb} (\\Noselect) "/" ""\r\n`);
        else {
          sock.write(`* ${verb} (\\HasChildren \\Noselect) "/" "[Gmail]"\r\n`);
          for (const f of folders) sock.write(`* ${verb} (${f.attrs}) "/" ${astring(encodeMailboxName(f.path))}\r\n`);
        }
        return ok('Success');
      case 'SELECT':
      case 'EXAMINE': {
        const name = fromMutf7(unquote(command.slice(verb.length + 1).trim()));
        const f = folders.find((x) => x.path === name || (name.toUpperCase() === 'INBOX' && x.path === 'INBOX'));
        if (f === undefined) return void sock.write(`${tag} NO [NONEXISTENT] Unknown Mailbox: ${name}\r\n`);
        selected.set(sock, f);
        told.set(sock, f.uids.size);
        sock.write(`* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen)\r\n* ${f.uids.size} EXISTS\r\n* 0 RECENT\r\n`);
        sock.write(`* OK [UIDVALIDITY ${f.uidValidity}] UIDs valid.\r\n* OK [UIDNEXT ${f.uidNext}] Predicted next UID.\r\n`);
        return ok(`[${verb === 'SELECT' ? 'READ-WRITE' : 'READ-ONLY'}] ${name} selected. (Success)`);
      }
      case 'FETCH': {
        // FETCH by sequence number (a re-match reads every header with FETCH 1:*): the same as
        // UID FETCH of the UIDs at those places.
        const f = selected.get(sock);
        if (f === undefined) return void sock.write(`${tag} BAD no mailbox selected\r\n`);
        const [set = '', ...items] = command.slice(6).split(' ');
        const sorted = [...f.uids.values()].sort((a, b) => a - b);
        const uids = uidsOf(set, sorted.length).map((n) => sorted[n - 1] as number);
        return uid(sock, tag, f, `FETCH ${uids.length === 0 ? '0' : uids.join(',')} ${items.join(' ')}`);
      }
      case 'UID': {
        const f = selected.get(sock);
        if (f === undefined) return void sock.write(`${tag} BAD no mailbox selected\r\n`);
        return uid(sock, tag, f, command.slice(4));
      }
      case 'CREATE': {
        // A folder is a label: CREATE makes a user label (Gmail nests with "/").
        const name = fromMutf7(unquote(command.slice(verb.length + 1).trim())).replace(/\/$/, '');
        if (folders.some((f) => f.path === name)) return void sock.write(`${tag} NO [ALREADYEXISTS] Duplicate folder name ${name} (Failure)\r\n`);
        addLabel(name);
        return ok('Success');
      }
      case 'SUBSCRIBE':
        return ok('Success');
      case 'CLOSE':
      case 'UNSELECT':
        selected.delete(sock);
        return ok('Success');
      case 'LOGOUT':
        sock.write('* BYE LOGOUT Requested\r\n');
        ok('73 good day (Success)');
        sock.end();
        return;
      default:
        sock.write(`${tag} BAD Unknown command\r\n`);
    }
  };
  const uid = (sock: net.Socket, tag: string, f: Folder, command: string): void => {
    const [verb = '', ...args] = command.split(' ');
    const index = byUid(f);
    const max = Math.max(0, ...index.keys());
    if (verb.toUpperCase() === 'SEARCH') {
      const i = args.findIndex((a) => a.toUpperCase() === 'UID');
      const found = (i >= 0 ? uidsOf(args[i + 1] ?? '', max) : uidsOf('1:*', max)).filter((u) => index.has(u));
      sock.write(`* SEARCH${found.map((u) => ` ${u}`).join('')}\r\n${tag} OK SEARCH (Success)\r\n`);
      return;
    }
    if (verb.toUpperCase() === 'STORE') return store(sock, tag, args, index, max);
    if (verb.toUpperCase() !== 'FETCH') return void sock.write(`${tag} BAD Unknown UID command\r\n`);
    const items = args.slice(1).join(' ').toUpperCase();
    const body = /BODY(\.PEEK)?\[\]/.test(items);
    const header = /BODY(\.PEEK)?\[HEADER\]/.test(items);
    // Sequence numbers: each message's place among the folder's UIDs.
    const seqOf = new Map([...index.keys()].sort((a, b) => a - b).map((u, n) => [u, n + 1]));
    for (const u of uidsOf(args[0] ?? '', max)) {
      const i = index.get(u);
      if (i === undefined) continue;
      const m = msgs[i] as GmailMessage;
      const seq = seqOf.get(u) ?? 0;
      const parts = [`UID ${u}`, `FLAGS (${(m.flags ?? []).join(' ')})`, `INTERNALDATE "${DATE}"`, `RFC822.SIZE ${m.raw.length}`];
      if (gm && items.includes('X-GM-MSGID')) parts.push(`X-GM-MSGID ${msgId(i)}`);
      if (gm && items.includes('X-GM-THRID')) parts.push(`X-GM-THRID ${m.thread ?? thrId(i)}`);
      if (gm && items.includes('X-GM-LABELS')) parts.push(`X-GM-LABELS (${m.labels.map((l) => (l.startsWith('\\') ? l : astring(encodeMailboxName(l)))).join(' ')})`);
      const head = `* ${seq} FETCH (${parts.join(' ')}`;
      if (body) {
        peer.bodies++;
        sock.write(Buffer.concat([Buffer.from(`${head} BODY[] {${m.raw.length}}\r\n`), m.raw, Buffer.from(')\r\n')]));
      } else if (header) {
        const end = m.raw.indexOf('\r\n\r\n');
        const h = end < 0 ? m.raw : m.raw.subarray(0, end + 4);
        sock.write(Buffer.concat([Buffer.from(`${head} BODY[HEADER] {${h.length}}\r\n`), h, Buffer.from(')\r\n')]));
      } else sock.write(`${head})\r\n`);
    }
    sock.write(`${tag} OK Success\r\n`);
  };
  /** UID STORE <set> +X-GM-LABELS / -X-GM-LABELS (<labels>): labels added or taken off, as Gmail does. */
  const store = (sock: net.Socket, tag: string, args: string[], index: Map<number, number>, max: number): void => {
    const item = (args[1] ?? '').toUpperCase();
    if (!gm || !/^[+-]X-GM-LABELS(\.SILENT)?$/.test(item)) return void sock.write(`${tag} BAD STORE of ${item} not spoken here\r\n`);
    if (peer.holdStores) return void peer.heldStores++;
    if (peer.refuseStores) return void sock.write(`${tag} NO [CANNOT] labels not changed\r\n`);
    const list = args.slice(2).join(' ').replace(/^\(|\)$/g, '');
    const labels = [...list.matchAll(/"((?:[^"\\]|\\.)*)"|([^\s"]+)/g)].map((x) => (x[1] === undefined ? (x[2] as string) : x[1].replace(/\\(.)/g, '$1'))).map((l) => (l.startsWith('\\') ? l : fromMutf7(l)));
    for (const u of uidsOf(args[0] ?? '', max)) {
      const i = index.get(u);
      if (i === undefined) continue;
      const m = msgs[i] as GmailMessage;
      m.labels = item.startsWith('+') ? [...new Set([...m.labels, ...labels])] : m.labels.filter((l) => !labels.includes(l));
    }
    folders.forEach(refresh);
    sock.write(`${tag} OK Success\r\n`);
  };
  /** APPEND <mailbox> [(<flags>)] [<date>] {n}: a new message, with the label of the folder it went to. */
  const append = (sock: net.Socket, tag: string, head: string, raw: Buffer): void => {
    const name = fromMutf7(unquote(/^("(?:[^"\\]|\\.)*"|\S+)/.exec(head)?.[1] ?? ''));
    const f = folders.find((x) => x.path === name || (name.toUpperCase() === 'INBOX' && x.path === 'INBOX'));
    if (f === undefined) return void sock.write(`${tag} NO [TRYCREATE] Folder doesn't exist. (Failure)\r\n`);
    const flags = /\(([^)]*)\)/.exec(head)?.[1]?.split(' ').filter((x) => x !== '') ?? [];
    const label = f.path === 'INBOX' ? '\\Inbox' : (SYSTEM.find(([p]) => p === f.path)?.[2] ?? (f.path.startsWith('[Gmail]/') ? '' : f.path));
    const use = SYSTEM.find(([p]) => p === f.path)?.[1];
    const m: GmailMessage = { raw, labels: label === '' ? [] : [label], flags, ...(use === '\\Junk' ? { bin: 'spam' as const } : use === '\\Trash' ? { bin: 'trash' as const } : {}) };
    const joined = threadOf(raw);
    msgs.push({ ...m, thread: joined ?? msgId(msgs.length) });
    folders.forEach(refresh);
    sock.write(`${tag} OK [APPENDUID ${f.uidValidity} ${f.uids.get(msgs.length - 1) ?? 0}] (Success)\r\n`);
  };
  /** The thread of the first message in the account that `raw`'s References or In-Reply-To names. */
  const threadOf = (raw: Buffer): string | undefined => {
    const end = raw.indexOf('\r\n\r\n');
    const head = raw.subarray(0, end < 0 ? raw.length : end).toString('latin1').replace(/\r\n[ \t]+/g, ' ');
    const named = [...head.matchAll(/^(?:References|In-Reply-To):(.*)$/gim)].flatMap((x) => [...(x[1] ?? '').matchAll(/<[^>]+>/g)].map((y) => y[0]));
    for (const id of named) {
      const j = msgs.findIndex((x) => messageIdOf(x.raw) === id);
      if (j >= 0) return (msgs[j] as GmailMessage).thread ?? thrId(j);
    }
    return undefined;
  };
  return peer;
}

function messageIdOf(raw: Buffer): string | undefined {
  const end = raw.indexOf('\r\n\r\n');
  return /^Message-ID:\s*(<[^>]+>)/im.exec(raw.subarray(0, end < 0 ? raw.length : end).toString('latin1'))?.[1];
}

/** Gmail's ids are 64-bit decimals; these are made up, distinct per message, threads of two. */
function msgId(i: number): string {
  return (1278455344230334865n + BigInt(i)).toString();
}

function thrId(i: number): string {
  return (1266894439832287888n + BigInt(Math.floor(i / 2))).toString();
}

/** An atom when it can be one (RFC 3501 9: no specials, no spaces), else a quoted string. */
function astring(s: string): string {
  return /^[A-Za-z0-9!#$&'+,\-./:;<=>?@^_`|~[\]]+$/.test(s) ? s : `"${s.replace(/["\\]/g, '\\$&')}"`;
}

function unquote(s: string): string {
  return s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1).replace(/\\(.)/g, '$1') : s;
}
