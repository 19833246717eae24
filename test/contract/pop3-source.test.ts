import { passwordCredentials } from '../../src/auth/credentials.js';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, readFile } from 'node:fs/promises';
import net from 'node:net';
import { promisify } from 'node:util';
import { MailferryError } from '../../src/domain/errors.js';
import type { MessageMeta } from '../../src/domain/message.js';
import { findDoveadm, skipUnlessDovecot, startDovecot, type DovecotServer } from '../../scripts/dev/dovecot.js';
import { seedMailbox, type SeedMessage } from '../../scripts/dev/seed.js';
import { silentLogger } from '../../src/log/logger.js';
import { Pop3Client } from '../../src/drivers/pop3/client.js';
import { POP3_INBOX, Pop3Source, type Pop3SourceOptions } from '../../src/drivers/pop3/source.js';
import type { Fetched } from '../../src/sources/source.js';
import { imapView, nastyMailbox, pop3View, randomBytes } from '../fixtures/nasty.js';
import { alice, withDovecot, type Account } from '../helpers/server.js';

/**
 * The POP3 Source against the real Dovecot POP3 (pop3s on pop3sPort, STLS on pop3Port).
 *
 * What Dovecot 2.3 serves on RETR (measured, see docs/pop3.md) is not quite imapView(raw): bare LF
 * becomes CRLF as in IMAP, but NUL bytes are sent as NUL (IMAP BODY[] turns them into 0x80), and
 * a message without a final newline gets CRLF appended, as RFC 1939 §3 requires (LIST still
 * reports the size without it). pop3View() below is that transformation.
 */
const execFileP = promisify(execFile);

function caseOf(raw: Buffer): string {
  return /^X-Mailferry-Case: (\S+)\r?$/m.exec(raw.toString('latin1'))?.[1] ?? '?';
}

function message(name: string, body: Buffer, headers = 'Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit'): SeedMessage {
  const head = `From: Alice <alice@example.org>\r\nSubject: ${name}\r\nMessage-ID: <${name}@mailferry.test>\r\nX-Mailferry-Case: ${name}\r\n${headers}\r\n\r\n`;
  return { raw: Buffer.concat([Buffer.from(head, 'latin1'), body]) };
}

/** ~2 MB of lines that are ".", "..", "...", ".x", empty, and 8-bit noise: streamed and unstuffed. */
function dotty(): SeedMessage {
  const noise = randomBytes(2_000_000, 77);
  const lines: Buffer[] = [];
  const specials = ['.', '..', '...', '.x', '', ' .', '.\t'];
  for (let i = 0, p = 0; p < noise.length; i++) {
    if (i % 3 === 0) lines.push(Buffer.from(specials[i % specials.length] as string, 'latin1'));
    else {
      const len = 1 + (i % 97);
      const line = Buffer.from(noise.subarray(p, p + len));
      p += len;
      for (let j = 0; j < line.length; j++) if (line[j] === 0x0a || line[j] === 0x0d || line[j] === 0x00) line[j] = 0x2e;
      lines.push(line);
    }
    lines.push(Buffer.from('\r\n'));
  }
  return message('dotty-2mb', Buffer.concat(lines), 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit');
}

const nasty = nastyMailbox();
const big = nasty.find((f) => f.path === 'Archive/2023')?.messages.find((m) => caseOf(m.raw) === 'big-20mb');
if (big === undefined) throw new Error('nasty fixture lost its big message');
const extra: SeedMessage[] = [
  big,
  dotty(),
  message('latin1-8bit', Buffer.from('Caf\xe9 cr\xe8me br\xfbl\xe9e \xa4 \xff\xfe\r\n..\r\n.\r\nend\r\n', 'latin1')),
];
const inboxSeeded = [...(nasty[0]?.messages ?? []), ...extra];
const rawOf = new Map(inboxSeeded.map((m) => [caseOf(m.raw), m.raw]));
const THRESHOLD = 1 << 20;

function options(server: DovecotServer, user: Account, mode: 'pop3s' | 'pop3', extra: Partial<Pop3SourceOptions> = {}): Pop3SourceOptions {
  return {
    endpoint: {
      kind: 'pop3',
      user: user.name,
      host: '127.0.0.1',
      port: mode === 'pop3s' ? server.pop3sPort : server.pop3Port,
      tls: mode === 'pop3s' ? 'tls' : 'starttls',
    },
    credentials: passwordCredentials(user.password),
    insecure: false,
    streamThreshold: THRESHOLD,
    log: silentLogger,
    debug: false,
    ...extra,
  };
}

async function listAll(source: Pop3Source): Promise<MessageMeta[]> {
  const out: MessageMeta[] = [];
  for await (const m of source.list(POP3_INBOX, () => true)) out.push(m);
  return out;
}

/**
 * Drains one fetched body. A stream is read like a slow disk would: after the first MiB the
 * reader stalls for 300 ms, long enough for the server to send megabytes more; `maxBuffered` is
 * the most the stream ever held unread (bounded only if the socket was paused).
 */
async function drain(f: Fetched, stall = 0): Promise<{ bytes: Buffer; streamed: boolean; maxBuffered: number }> {
  if (Buffer.isBuffer(f.body)) return { bytes: f.body, streamed: false, maxBuffered: 0 };
  const parts: Buffer[] = [];
  let maxBuffered = 0;
  let read = 0;
  let stalled = stall === 0;
  for await (const chunk of f.body) {
    parts.push(chunk as Buffer);
    read += (chunk as Buffer).length;
    maxBuffered = Math.max(maxBuffered, f.body.readableLength);
    if (!stalled && read > 1 << 20) {
      stalled = true;
      await new Promise((r) => setTimeout(r, stall));
      maxBuffered = Math.max(maxBuffered, f.body.readableLength);
    }
  }
  return { bytes: Buffer.concat(parts), streamed: true, maxBuffered };
}

async function rejectsKind(p: Promise<unknown>, kind: string, pattern?: RegExp): Promise<MailferryError> {
  try {
    await p;
  } catch (e: unknown) {
    assert.ok(e instanceof MailferryError, `not a MailferryError: ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (pattern !== undefined) assert.match(e.message, pattern);
    return e;
  }
  assert.fail('expected a rejection');
}

/** TCP proxy; `cutAfter(n)` drops both sides once n more bytes went from server to client. */
async function cuttingProxy(port: number): Promise<{ port: number; cutAfter(n: number): void; close(): Promise<void> }> {
  let budget = Infinity;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.on('data', (d: Buffer) => {
      budget -= d.length;
      if (budget < 0) {
        client.destroy();
        upstream.destroy();
      } else client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return {
    port: addr.port,
    cutAfter: (n) => (budget = n),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('POP3 Source contract: Dovecot', () => {
  const dc = withDovecot({ nasty: { bigMessage: false }, seed: [{ path: 'INBOX', messages: extra }] });
  let ca: Buffer;
  before(async () => {
    if (dc.skip === false) ca = await readFile(dc.server.caFile);
  });
  const source = (mode: 'pop3s' | 'pop3', more: Partial<Pop3SourceOptions> = {}): Pop3Source =>
    new Pop3Source(options(dc.server, alice, mode, { ca, ...more }));

  test('pop3s: every INBOX message byte-exact, the 20 MB one and the 2 MB one streamed with bounded buffering', { skip: dc.skip }, async () => {
    const src = source('pop3s');
    try {
      assert.equal(src.identity, `pop3s://alice@127.0.0.1:${dc.server.pop3sPort}`);
      assert.deepEqual(await src.mailboxes(), [{ path: 'INBOX', delimiter: '' }]);
      const sel = await src.select(POP3_INBOX);
      assert.equal(sel.count, inboxSeeded.length);
      assert.equal(sel.mailbox.uidValidity, undefined);
      const metas = await listAll(src);
      assert.equal(metas.length, inboxSeeded.length);
      for (const m of metas) assert.match(m.id, /^[0-9a-f]{16}$/, 'pop3_uidl_format = %08Xu%08Xv');

      const seen = new Set<string>();
      for await (const f of src.fetch(metas, new AbortController().signal)) {
        const { bytes, streamed, maxBuffered } = await drain(f, 300);
        const name = caseOf(bytes);
        const raw = rawOf.get(name);
        assert.ok(raw !== undefined, `unknown message ${name}`);
        assert.ok(!seen.has(name), `${name} twice`);
        seen.add(name);
        const want = pop3View(raw);
        assert.ok(bytes.equals(want), `${name}: ${bytes.length} bytes, want ${want.length}`);
        // LIST size is Dovecot's virtual size: imapView's length (no CRLF added, NUL counted once).
        assert.equal(f.meta.size, imapView(raw).length, `${name}: LIST size`);
        const plain = !raw.includes(0) && raw.subarray(-1)[0] === 0x0a;
        if (plain) assert.ok(bytes.equals(imapView(raw)), `${name}: same bytes as IMAP BODY[]`);
        assert.equal(streamed, want.length > THRESHOLD, `${name}: streamed iff over the threshold`);
        if (streamed) assert.ok(maxBuffered <= THRESHOLD + (256 << 10), `${name}: held ${maxBuffered} bytes unread`);
      }
      assert.deepEqual([...seen].sort(), [...rawOf.keys()].sort());
    } finally {
      await src.close();
    }
  });

  test('headers(): TOP n 0 gives each header block, as RETR has it', { skip: dc.skip }, async () => {
    const src = source('pop3s');
    try {
      let n = 0;
      for await (const h of src.headers(POP3_INBOX)) {
        const raw = rawOf.get(caseOf(h.header));
        assert.ok(raw !== undefined);
        const want = pop3View(raw);
        assert.ok(h.header.equals(want.subarray(0, want.indexOf('\r\n\r\n') + 4)), caseOf(h.header));
        assert.equal(h.size, imapView(raw).length);
        n++;
      }
      assert.equal(n, inboxSeeded.length);
    } finally {
      await src.close();
    }
  });

  test('pop3:// with STLS on pop3Port: encrypted, verified with caFile, same bytes', { skip: dc.skip }, async () => {
    const c = await Pop3Client.connect({ host: '127.0.0.1', port: dc.server.pop3Port, tls: 'starttls', user: alice.name, password: alice.password, ca });
    assert.equal(c.secure, true);
    assert.equal(c.pipelining, true);
    await c.quit();
    const src = source('pop3');
    try {
      const metas = (await listAll(src)).filter((m) => (m.size ?? 0) < 10 << 20);
      let n = 0;
      for await (const f of src.fetch(metas, new AbortController().signal)) {
        const { bytes } = await drain(f);
        assert.ok(bytes.equals(pop3View(rawOf.get(caseOf(bytes)) ?? Buffer.alloc(0))), caseOf(bytes));
        n++;
      }
      assert.equal(n, inboxSeeded.length - 1);
    } finally {
      await src.close();
    }
  });

  test('UIDL is stable across sessions', { skip: dc.skip }, async () => {
    const a = source('pop3s');
    const b = source('pop3');
    try {
      const first = (await listAll(a)).map((m) => m.id);
      await a.quit(); // next call is a new session
      assert.deepEqual((await listAll(a)).map((m) => m.id), first);
      assert.deepEqual((await listAll(b)).map((m) => m.id), first);
      assert.equal(new Set(first).size, first.length);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('untrusted certificate: tls error, over pop3s and after STLS', { skip: dc.skip }, async () => {
    const untrusted = new Pop3Source(options(dc.server, alice, 'pop3s'));
    await rejectsKind(untrusted.select(POP3_INBOX), 'tls', /not trusted/);
    await untrusted.close();
    const untrustedStls = new Pop3Source(options(dc.server, alice, 'pop3'));
    await rejectsKind(untrustedStls.select(POP3_INBOX), 'tls', /not trusted/);
    await untrustedStls.close();
    const insecure = new Pop3Source(options(dc.server, alice, 'pop3s', { insecure: true }));
    assert.equal((await insecure.select(POP3_INBOX)).count, inboxSeeded.length);
    await insecure.close();
  });

  test('a connection dropped mid-RETR of the 20 MB message is retryable; the next fetch gets it whole', { skip: dc.skip }, async () => {
    const proxy = await cuttingProxy(dc.server.pop3sPort);
    const src = new Pop3Source({ ...options(dc.server, alice, 'pop3s', { ca }), endpoint: { kind: 'pop3', user: alice.name, host: '127.0.0.1', port: proxy.port, tls: 'tls' } });
    try {
      const bigMeta = (await listAll(src)).find((m) => (m.size ?? 0) > 20e6);
      assert.ok(bigMeta !== undefined);
      proxy.cutAfter(3 << 20);
      const attempt = async (): Promise<Buffer> => {
        for await (const f of src.fetch([bigMeta], new AbortController().signal)) return (await drain(f)).bytes;
        throw new Error('not yielded');
      };
      const e = await rejectsKind(attempt(), 'network', /lost|closed/);
      assert.equal(e.retryable, true);
      proxy.cutAfter(Infinity);
      const bytes = await attempt(); // the same Source logs in again
      assert.ok(bytes.equals(pop3View(big.raw)));
    } finally {
      await src.close();
      await proxy.close();
    }
  });

  test('delete(): DELE then QUIT removes exactly those messages; the others keep their UIDLs', { skip: dc.skip }, async () => {
    const bob = { name: 'bob', password: 'bob-secret' };
    await dc.server.addUser(bob);
    await seedMailbox(dc.server, bob, [{ path: 'INBOX', messages: [1, 2, 3, 4].map((i) => message(`bob-${i}`, Buffer.from(`body ${i}\r\n`))) }]);
    const src = new Pop3Source(options(dc.server, bob, 'pop3s', { ca }));
    try {
      const ids = (await listAll(src)).map((m) => m.id);
      assert.equal(ids.length, 4);
      await src.delete([ids[0] as string, ids[2] as string]);
      const again = new Pop3Source(options(dc.server, bob, 'pop3s', { ca }));
      assert.deepEqual((await listAll(again)).map((m) => m.id), [ids[1], ids[3]]);
      await again.close();
      // A session that ends without QUIT deletes nothing.
      const c = await Pop3Client.connect({ host: '127.0.0.1', port: dc.server.pop3sPort, tls: 'tls', user: bob.name, password: bob.password, ca });
      assert.deepEqual(await c.dele([1]), []);
      c.destroy();
      assert.deepEqual((await listAll(src)).map((m) => m.id), [ids[1], ids[3]]);
    } finally {
      await src.close();
    }
  });

  // Last in this server's life: after a failed login Dovecot delays every further login from
  // this IP (auth_penalty), which would slow the tests after it.
  test('wrong password: auth error (exit 4), no secret in the message', { skip: dc.skip }, async () => {
    const wrong = new Pop3Source(options(dc.server, { ...alice, password: 'not-it' }, 'pop3s', { ca }));
    const e = await rejectsKind(wrong.select(POP3_INBOX), 'auth', /login refused by 127\.0\.0\.1:\d+: wrong user name or password/);
    assert.equal(e.exitCode, 4);
    assert.doesNotMatch(e.message, /not-it/);
    await wrong.close();
  });
});

describe('POP3 Source contract: Dovecot without TLS (ssl = no)', () => {
  let server: DovecotServer | undefined;
  const skip = skipUnlessDovecot();
  before(async () => {
    if (skip === false) server = await startDovecot({ users: [{ ...alice }], ssl: false });
  });
  after(async () => server?.stop());

  test('pop3:// refuses to log in when STLS is not offered; tls-mode plain logs in', { skip }, async () => {
    const s = server as DovecotServer;
    const src = new Pop3Source(options(s, alice, 'pop3'));
    await rejectsKind(src.select(POP3_INBOX), 'tls', /does not offer STLS; refusing to log in in plain text/);
    await src.close();
    const plain = new Pop3Source({ ...options(s, alice, 'pop3'), endpoint: { ...options(s, alice, 'pop3').endpoint, tls: 'plain' } });
    assert.equal((await plain.select(POP3_INBOX)).count, 0);
    await plain.close();
    await new Promise((r) => setTimeout(r, 200));
    const log = s.logTail(50);
    // Only the tls-mode plain session authenticated; the refused one closed with no auth attempt.
    assert.equal(log.match(/pop3-login: Info: Login: user=<alice>/g)?.length, 1, log);
    assert.doesNotMatch(log, /auth failed|Aborted login/, log);
  });
});

describe('POP3 Source contract: Dovecot with pop3_lock_session = yes', () => {
  // The harness does not set pop3_lock_session; it is added to the generated config and reloaded.
  const dc = withDovecot({});
  const doveadm = findDoveadm();

  test('a second session gets [IN-USE]: "mailbox locked by another session", retryable', { skip: dc.skip !== false ? dc.skip : doveadm === undefined ? 'doveadm not found' : false }, async () => {
    await appendFile(dc.server.confFile, '\npop3_lock_session = yes\n');
    await execFileP(doveadm as string, ['-c', dc.server.confFile, 'reload']);
    await new Promise((r) => setTimeout(r, 500));
    const first = new Pop3Source(options(dc.server, alice, 'pop3s', { ca: await readFile(dc.server.caFile) }));
    const second = new Pop3Source(options(dc.server, alice, 'pop3s', { ca: await readFile(dc.server.caFile) }));
    try {
      await first.select(POP3_INBOX);
      const t0 = Date.now();
      const e = await rejectsKind(second.select(POP3_INBOX), 'network', /mailbox locked by another session at 127\.0\.0\.1:\d+/);
      assert.equal(e.retryable, true);
      assert.ok(Date.now() - t0 > 5000, 'Dovecot waits for the lock (about 10 s) before [IN-USE]');
      await first.close();
      assert.equal((await second.select(POP3_INBOX)).count, 0);
    } finally {
      await first.close();
      await second.close();
    }
  });
});
