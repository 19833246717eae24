/**
 * The Dovecot harness itself, against the real Dovecot: transports, the seeded nasty mailbox,
 * users whose mail_location points at a hand-made Maildir tree (how we will let Dovecot serve a
 * mailferry archive), and POP3.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { chownToMailUser, startDovecot, type DovecotServer } from '../../scripts/dev/dovecot.js';
import { encodeMailboxName } from '../../scripts/dev/seed.js';
import { imapView, nastyMailbox } from '../fixtures/nasty.js';
import { connect, fetchAll, withDovecot, type Account } from '../helpers/server.js';

const dc = withDovecot({ nasty: true });

function caseOf(raw: Buffer): string {
  const m = /^X-Mailferry-Case: (\S+)\r?$/m.exec(raw.toString('latin1'));
  return m?.[1] ?? '?';
}

function withoutRecent(flags: Set<string>): string[] {
  return [...flags].filter((f) => f !== '\\Recent').sort();
}

/** Talks a line protocol over a raw socket; returns everything received until `done` matches. */
async function talk(port: number, steps: { send?: string; until: RegExp }[]): Promise<Buffer[]> {
  const sock = net.connect({ host: '127.0.0.1', port });
  let buf = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  let closed = false;
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  });
  sock.on('close', () => {
    closed = true;
    wake?.();
  });
  sock.on('error', () => undefined);
  const replies: Buffer[] = [];
  try {
    for (const step of steps) {
      if (step.send !== undefined) sock.write(step.send + '\r\n');
      while (!step.until.test(buf.toString('latin1'))) {
        if (closed) throw new Error(`connection closed waiting for ${String(step.until)}: ${buf.toString('latin1')}`);
        await new Promise<void>((resolve) => (wake = resolve));
      }
      replies.push(buf);
      buf = Buffer.alloc(0);
    }
  } finally {
    sock.destroy();
  }
  return replies;
}

interface Mail {
  name: string;
  flags: string;
  mtime: number;
}

const mailBody = (subject: string): string =>
  `From: a@example.org\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@example.org>\r\n\r\nbody of ${subject}\r\n`;

/** Writes a Maildir (cur/new/tmp) with messages in cur/ and an optional dovecot-keywords file. */
async function writeMaildir(dir: string, mails: Mail[], keywords?: string[]): Promise<void> {
  for (const sub of ['cur', 'new', 'tmp']) await fs.mkdir(path.join(dir, sub), { recursive: true });
  for (const m of mails) {
    const file = path.join(dir, 'cur', `${m.mtime}.M1P1.archive:2,${m.flags}`);
    await fs.writeFile(file, mailBody(m.name));
    await fs.utimes(file, m.mtime, m.mtime);
  }
  if (keywords !== undefined) await fs.writeFile(path.join(dir, 'dovecot-keywords'), keywords.map((k, i) => `${i} ${k}\n`).join(''));
}

interface Seen {
  subject: string;
  flags: string[];
  date: number;
}

async function readFolders(server: DovecotServer, user: Account): Promise<Map<string, Seen[] | 'noselect'>> {
  const c = await connect(server, user);
  const out = new Map<string, Seen[] | 'noselect'>();
  try {
    for (const box of await c.list()) {
      if (box.flags.has('\\Noselect')) {
        out.set(box.path, 'noselect');
        continue;
      }
      const seen: Seen[] = [];
      const info = await c.mailboxOpen(box.path, { readOnly: true });
      if (info.exists > 0) {
        for await (const m of c.fetch('1:*', { uid: true, flags: true, internalDate: true, envelope: true })) {
          seen.push({
            subject: m.envelope?.subject ?? '',
            flags: withoutRecent(m.flags ?? new Set()),
            date: new Date(m.internalDate ?? 0).getTime() / 1000,
          });
        }
      }
      out.set(box.path, seen);
    }
  } finally {
    await c.logout();
  }
  return out;
}

/** the same hand-made archive content, in both layouts */
const ARCHIVE: { folder: string; mails: Mail[]; keywords?: string[] }[] = [
  { folder: 'INBOX', mails: [{ name: 'in-1', flags: 'Sa', mtime: 1600000000 }, { name: 'in-2', flags: '', mtime: 1600000100 }], keywords: ['$Label1'] },
  { folder: 'Archive/2023', mails: [{ name: 'arch-1', flags: 'FRab', mtime: 1600000200 }], keywords: ['project-x', '$Forwarded'] },
  { folder: 'Résumé – Ünïcödé', mails: [{ name: 'uni-1', flags: 'S', mtime: 1600000300 }] },
  { folder: '日本語/子', mails: [{ name: 'jp-1', flags: 'DS', mtime: 1600000400 }] },
];

const EXPECTED: Record<string, Seen[] | 'noselect'> = {
  INBOX: [{ subject: 'in-1', flags: ['$Label1', '\\Seen'], date: 1600000000 }, { subject: 'in-2', flags: [], date: 1600000100 }],
  Archive: 'noselect',
  'Archive/2023': [{ subject: 'arch-1', flags: ['$Forwarded', '\\Answered', '\\Flagged', 'project-x'], date: 1600000200 }],
  'Résumé – Ünïcödé': [{ subject: 'uni-1', flags: ['\\Seen'], date: 1600000300 }],
  日本語: 'noselect',
  '日本語/子': [{ subject: 'jp-1', flags: ['\\Draft', '\\Seen'], date: 1600000400 }],
};

describe('dovecot harness', { skip: dc.skip }, () => {
  test('lists the nasty folders over plain, STARTTLS and implicit TLS', async () => {
    const expected = [
      'Archive', 'Archive/2023', 'Deep', 'Deep/Child', 'Drafts', 'Empty', 'INBOX', 'Projects', 'Projects/Client A',
      'Projects/Client A/Reports', 'Résumé – Ünïcödé', 'Sent', '日本語',
    ];
    for (const security of ['plain', 'starttls', 'tls'] as const) {
      const c = await connect(dc.server, dc.alice, { security });
      try {
        assert.equal(c.secureConnection, security !== 'plain', `secure on ${security}`);
        const list = await c.list();
        assert.deepEqual(list.map((b) => b.path).sort(), expected, security);
        const deep = list.find((b) => b.path === 'Deep');
        assert.ok(deep?.flags.has('\\Noselect'), 'Deep, never created, is \\Noselect');
        const archive = list.find((b) => b.path === 'Archive');
        assert.ok(archive !== undefined && !archive.flags.has('\\Noselect'), 'Archive, created empty, is selectable');
        assert.notEqual(list.find((b) => b.path === 'Deep/Child')?.subscribed, true);
        assert.equal(list.find((b) => b.path === 'Sent')?.subscribed, true);
      } finally {
        await c.logout();
      }
    }
  });

  test('seed encodes mailbox names as modified UTF-7', () => {
    assert.equal(encodeMailboxName('amp&name'), 'amp&-name');
    assert.equal(encodeMailboxName('Résumé – Ünïcödé'), 'R&AOk-sum&AOk- &IBM- &ANw-n&AO8-c&APY-d&AOk-');
    assert.equal(encodeMailboxName('日本語'), '&ZeVnLIqe-');
  });

  test('TLS without our CA is refused', async () => {
    const { ImapFlow } = await import('imapflow');
    const c = new ImapFlow({
      host: dc.server.host, port: dc.server.imapsPort, secure: true, logger: false,
      auth: { user: dc.alice.name, pass: dc.alice.password }, tls: { rejectUnauthorized: true },
    });
    await assert.rejects(c.connect());
    c.close();
  });

  test('every seeded message is there with its flags, internal date and bytes', async () => {
    for (const folder of nastyMailbox()) {
      const got = await fetchAll(dc.server, dc.alice, folder.path);
      assert.equal(got.length, folder.messages.length, `${folder.path}: count`);
      folder.messages.forEach((want, i) => {
        const m = got[i];
        assert.ok(m !== undefined);
        const name = `${folder.path} ${caseOf(want.raw)}`;
        assert.equal(caseOf(m.raw), caseOf(want.raw), `${name}: UID order follows seed order`);
        assert.deepEqual(withoutRecent(m.flags), [...(want.flags ?? [])].sort(), `${name}: flags`);
        assert.equal(m.internalDate.getTime(), want.date?.getTime(), `${name}: internal date`);
        assert.ok(m.raw.equals(imapView(want.raw)), `${name}: BODY[] is imapView(seeded)`);
        const exact = !want.raw.includes(0) && !/(^|[^\r])\n/.test(want.raw.toString('latin1'));
        assert.equal(m.raw.equals(want.raw), exact, `${name}: byte-exact unless bare LF or NUL`);
      });
    }
  });

  test('the big message is over 20 MB', async () => {
    const archive = await fetchAll(dc.server, dc.alice, 'Archive/2023');
    const big = archive.find((m) => caseOf(m.raw) === 'big-20mb');
    assert.ok(big !== undefined && big.raw.length > 20 * 1024 * 1024, `size ${big?.raw.length ?? 0}`);
  });

  test('NUL bytes: BODY.PEEK[] gives 0x80, BINARY.PEEK[] gives the NULs back', async () => {
    const seeded = nastyMailbox({ bigMessage: false })[0]?.messages.find((m) => caseOf(m.raw) === 'nul-bytes');
    assert.ok(seeded !== undefined);
    const login = `a LOGIN ${dc.alice.name} ${dc.alice.password}`;
    const replies = await talk(dc.server.imapPort, [
      { until: /^\* OK/m },
      { send: login, until: /^a OK/m },
      { send: 'b EXAMINE INBOX', until: /^b OK/m },
      { send: 'c UID SEARCH HEADER X-Mailferry-Case nul-bytes', until: /^c OK/m },
    ]);
    const uid = /^\* SEARCH (\d+)/m.exec(replies[3]?.toString('latin1') ?? '')?.[1];
    assert.ok(uid !== undefined);
    const [body, binary] = (await talk(dc.server.imapPort, [
      { until: /^\* OK/m },
      { send: login, until: /^a OK/m },
      { send: 'b EXAMINE INBOX', until: /^b OK/m },
      { send: `c UID FETCH ${uid} (BODY.PEEK[])`, until: /^c OK/m },
      { send: `d UID FETCH ${uid} (BINARY.PEEK[])`, until: /^d OK/m },
    ])).slice(3);
    const literal = (reply: Buffer | undefined, marker: string): Buffer => {
      assert.ok(reply !== undefined);
      const m = new RegExp(`${marker}\\{(\\d+)\\}\\r\\n`).exec(reply.toString('latin1'));
      assert.ok(m !== null, reply.toString('latin1'));
      const start = m.index + m[0].length;
      return reply.subarray(start, start + Number(m[1]));
    };
    assert.ok(literal(body, 'BODY\\[\\] ').equals(imapView(seeded.raw)));
    assert.ok(literal(binary, 'BINARY\\[\\] ~').equals(seeded.raw));
  });

  test('POP3: RETR on pop3Port, dot-stuffed, with %08Xu%08Xv UIDLs', async () => {
    const inbox = nastyMailbox({ bigMessage: false })[0]?.messages ?? [];
    const n = inbox.findIndex((m) => caseOf(m.raw) === 'dot-lines') + 1;
    assert.ok(n > 0);
    const replies = await talk(dc.server.pop3Port, [
      { until: /^\+OK/m },
      { send: `USER ${dc.alice.name}`, until: /^\+OK/m },
      { send: `PASS ${dc.alice.password}`, until: /^\+OK/m },
      { send: 'STAT', until: /^\+OK/m },
      { send: `UIDL ${n}`, until: /^\+OK/m },
      { send: `RETR ${n}`, until: /\r\n\.\r\n$/ },
      { send: 'QUIT', until: /^\+OK/m },
    ]);
    assert.match(replies[3]?.toString() ?? '', new RegExp(`^\\+OK ${inbox.length} `));
    assert.match(replies[4]?.toString() ?? '', new RegExp(`^\\+OK ${n} [0-9a-f]{16}\\r\\n$`));
    const retr = replies[5] ?? Buffer.alloc(0);
    const text = retr.subarray(retr.indexOf('\r\n') + 2, retr.length - 3);
    assert.match(text.toString('latin1'), /\r\n\.\.\r\n\.\.\.two dots\r\n/, 'lines starting with "." are stuffed');
    const unstuffed = Buffer.from(text.toString('latin1').replace(/^\./gm, ''), 'latin1');
    assert.ok(unstuffed.equals(imapView(inbox[n - 1]?.raw ?? Buffer.alloc(0))));
  });

  test('serves a hand-made Maildir++ tree with UTF-8 names: maildir:<dir>:UTF-8', async () => {
    const root = path.join(dc.server.dir, 'archives', 'maildirpp');
    for (const a of ARCHIVE) {
      const dir = a.folder === 'INBOX' ? root : path.join(root, '.' + a.folder.replaceAll('/', '.'));
      await writeMaildir(dir, a.mails, a.keywords);
    }
    await chownToMailUser(root);
    const user = { name: 'pp', password: 'pp-secret' };
    await dc.server.addUser({ ...user, mailLocation: `maildir:${root}:UTF-8` });
    assert.deepEqual(Object.fromEntries(await readFolders(dc.server, user)), EXPECTED);
  });

  test('serves a hand-made LAYOUT=fs tree with UTF-8 names: maildir:<dir>:LAYOUT=fs:UTF-8', async () => {
    const root = path.join(dc.server.dir, 'archives', 'fs');
    for (const a of ARCHIVE) await writeMaildir(a.folder === 'INBOX' ? root : path.join(root, ...a.folder.split('/')), a.mails, a.keywords);
    await chownToMailUser(root);
    const user = { name: 'fs', password: 'fs-secret' };
    await dc.server.addUser({ ...user, mailLocation: `maildir:${root}:LAYOUT=fs:UTF-8` });
    assert.deepEqual(Object.fromEntries(await readFolders(dc.server, user)), EXPECTED);
  });

  test('a root-owned tree is served only with INDEX/CONTROL elsewhere, and then dovecot-keywords is ignored', async () => {
    const root = path.join(dc.server.dir, 'archives', 'rootowned');
    for (const a of ARCHIVE) await writeMaildir(a.folder === 'INBOX' ? root : path.join(root, ...a.folder.split('/')), a.mails, a.keywords);
    const user = { name: 'ro', password: 'ro-secret' };
    await dc.server.addUser({ ...user, mailLocation: `maildir:${root}:LAYOUT=fs:UTF-8:INDEX=MEMORY:CONTROL=~/control` });
    const got = await readFolders(dc.server, user);
    const inbox = got.get('INBOX');
    assert.ok(Array.isArray(inbox));
    assert.deepEqual(inbox[0]?.flags, ['\\Seen', 'unknown-0']);
    assert.equal(inbox[0]?.date, 1600000000);
  });

  test('several servers run at once; stop() is idempotent', async () => {
    const other = await startDovecot({ users: [{ name: 'solo', password: 'pw' }] });
    try {
      assert.notEqual(other.imapPort, dc.server.imapPort);
      const c = await connect(other, { name: 'solo', password: 'pw' }, { security: 'tls' });
      assert.deepEqual((await c.list()).map((b) => b.path), ['INBOX']);
      await c.logout();
    } finally {
      await other.stop();
      await other.stop();
    }
    await assert.rejects(connect(other, { name: 'solo', password: 'pw' }));
  });
});
