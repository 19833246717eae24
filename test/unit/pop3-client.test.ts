import { passwordCredentials } from '../../src/auth/credentials.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { MailferryError } from '../../src/domain/errors.js';
import type { MessageMeta } from '../../src/domain/message.js';
import { silentLogger } from '../../src/log/logger.js';
import { Pop3Client, type Pop3ClientOptions, type Retrieved } from '../../src/drivers/pop3/client.js';
import { contentKey } from '../../src/formats/fingerprint.js';
import { HEADER_KEYS, POP3_INBOX, Pop3Source } from '../../src/drivers/pop3/source.js';
import type net from 'node:net';
import { fakeServer, standard, stuff, type Fake, type Mailbox } from '../helpers/pop3-peer.js';

/**
 * Pop3Client and Pop3Source against scripted fake servers on loopback: the cases a real Dovecot
 * cannot show (no STLS, injection, [IN-USE] without a lock, no UIDL, dropped connections).
 */
const opts = (fake: Fake, extra: Partial<Pop3ClientOptions> = {}): Pop3ClientOptions => ({
  host: '127.0.0.1',
  port: fake.port,
  tls: 'plain',
  user: 'alice',
  password: 'pw',
  ...extra,
});

async function rejectsKind(p: Promise<unknown>, kind: string, pattern?: RegExp, retryable?: boolean): Promise<MailferryError> {
  try {
    await p;
  } catch (e: unknown) {
    assert.ok(e instanceof MailferryError, `not a MailferryError: ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (pattern !== undefined) assert.match(e.message, pattern);
    if (retryable !== undefined) assert.equal(e.retryable, retryable, e.message);
    return e;
  }
  assert.fail('expected a rejection');
}

const sentCredentials = (fake: Fake): string[] => fake.received.filter((l) => /^(USER|PASS|AUTH)\b/i.test(l));

test('pop3:// refuses to log in when the server does not offer STLS', async () => {
  const fake = await fakeServer(standard({ capa: ['USER', 'UIDL', 'SASL PLAIN'] }));
  try {
    await rejectsKind(Pop3Client.connect(opts(fake, { tls: 'starttls' })), 'tls', /does not offer STLS; refusing to log in in plain text/);
    assert.deepEqual(sentCredentials(fake), []);
  } finally {
    await fake.close();
  }
});

test('pop3:// without CAPA tries STLS and refuses when it fails', async () => {
  const fake = await fakeServer(standard({ capa: null }, (line, sock) => line === 'STLS' && (sock.write('-ERR not here\r\n'), true)));
  try {
    await rejectsKind(Pop3Client.connect(opts(fake, { tls: 'starttls' })), 'tls', /does not offer STLS/);
    assert.deepEqual(fake.received, ['CAPA', 'STLS']);
  } finally {
    await fake.close();
  }
});

test('plain-text bytes after the STLS reply (injection) are refused', async () => {
  const fake = await fakeServer(
    standard({ capa: ['STLS', 'USER'] }, (line, sock) => line === 'STLS' && (sock.write('+OK Begin TLS\r\n+OK injected\r\n'), true)),
  );
  try {
    await rejectsKind(Pop3Client.connect(opts(fake, { tls: 'starttls' })), 'tls', /sent data after its STLS reply/);
    assert.deepEqual(sentCredentials(fake), []);
  } finally {
    await fake.close();
  }
});

test('USER/PASS when SASL PLAIN is not offered; a wrong password is an auth error', async () => {
  const fake = await fakeServer(standard({ capa: ['USER', 'UIDL'] }));
  try {
    const c = await Pop3Client.connect(opts(fake));
    assert.deepEqual(fake.received, ['CAPA', 'USER alice', 'PASS pw']);
    assert.equal(c.pipelining, false);
    await c.quit();
    const e = await rejectsKind(Pop3Client.connect(opts(fake, { password: 'S3cret-XYZ' })), 'auth', /login refused by 127\.0\.0\.1:\d+: wrong user name or password/);
    assert.equal(e.exitCode, 4);
    assert.doesNotMatch(e.message, /S3cret/);
  } finally {
    await fake.close();
  }
});

test('-ERR [IN-USE] at login: "mailbox locked by another session", retryable network error', async () => {
  const fake = await fakeServer(
    standard({}, (line, sock) => line.startsWith('PASS') && (sock.write('-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n'), true)),
  );
  try {
    await rejectsKind(Pop3Client.connect(opts(fake)), 'network', /mailbox locked by another session at 127\.0\.0\.1:\d+/, true);
  } finally {
    await fake.close();
  }
});

test('AUTH PLAIN: inline initial response, or a continuation when the line would pass 255 octets (RFC 5034)', async () => {
  const long = 'p'.repeat(300);
  let decoded = '';
  const fake = await fakeServer(
    standard({ capa: ['SASL PLAIN LOGIN', 'UIDL'] }, (line, sock) => {
      if (line === 'AUTH PLAIN') {
        sock.write('+ \r\n');
        return true;
      }
      const inline = /^AUTH PLAIN (\S+)$/.exec(line);
      const b64 = inline?.[1] ?? (/^[A-Za-z0-9+/=]{40,}$/.test(line) ? line : undefined);
      if (b64 === undefined) return false;
      decoded = Buffer.from(b64, 'base64').toString('utf8');
      sock.write(decoded === `\0alice\0${long}` || decoded === '\0alice\0pw' ? '+OK Logged in.\r\n' : '-ERR [AUTH] Authentication failed.\r\n');
      return true;
    }),
  );
  const trace: string[] = [];
  const debug = (l: string): number => trace.push(l);
  try {
    await (await Pop3Client.connect(opts(fake, { debug }))).quit();
    assert.equal(decoded, '\0alice\0pw');
    assert.match(fake.received[1] ?? '', /^AUTH PLAIN \S+$/);
    fake.received.length = 0;
    await (await Pop3Client.connect(opts(fake, { password: long, debug }))).quit();
    assert.equal(decoded, `\0alice\0${long}`);
    assert.equal(fake.received[1], 'AUTH PLAIN');
    // The trace shows the exchange but never a credential, not even base64-encoded.
    assert.ok(trace.includes('C: AUTH ***') && trace.includes('C: ***') && trace.includes('C: AUTH PLAIN'), trace.join('\n'));
    const b64 = (p: string): string => Buffer.from(`\0alice\0${p}`).toString('base64');
    for (const l of trace) assert.ok(!l.includes(b64('pw')) && !l.includes(b64(long)) && !l.includes(long), l);
    await rejectsKind(Pop3Client.connect(opts(fake, { password: 'nope' })), 'auth');
  } finally {
    await fake.close();
  }
});

test('a user name or password with a line break is refused before connecting', async () => {
  await rejectsKind(Pop3Client.connect({ host: '127.0.0.1', port: 1, tls: 'plain', user: 'a\r\nDELE 1', password: 'x' }), 'usage');
});

test('connection refused and unknown host are network errors', async () => {
  const fake = await fakeServer(standard({}));
  const port = fake.port;
  await fake.close();
  await rejectsKind(Pop3Client.connect({ host: '127.0.0.1', port, tls: 'plain', user: 'a', password: 'b' }), 'network', /connection refused/);
  await rejectsKind(Pop3Client.connect({ host: 'no-such-host.invalid', port: 995, tls: 'tls', user: 'a', password: 'b' }), 'network', /unknown host/);
});

test('Source: a server without UIDL is a usage error that mentions --no-uidl', async () => {
  for (const box of [{ capa: ['USER', 'TOP'] }, { capa: null, uidl: false }] satisfies Mailbox[]) {
    const fake = await fakeServer(standard({ ...box, messages: [Buffer.from('Subject: x\r\n\r\nhi\r\n')] }));
    const source = new Pop3Source({
      endpoint: { kind: 'pop3', user: 'alice', host: '127.0.0.1', port: fake.port, tls: 'plain' },
      credentials: passwordCredentials('pw'),
      insecure: false,
      streamThreshold: 1 << 20,
      log: silentLogger,
      debug: false,
    });
    try {
      await rejectsKind(source.select(POP3_INBOX), 'usage', /does not support UIDL.*--no-uidl/);
    } finally {
      await source.close();
      await fake.close();
    }
  }
});

test('Source with noUidl on a server without UIDL: ids are header keys, duplicates numbered in order, stable across sessions', async () => {
  const m = (subject: string, body = 'hi'): Buffer => Buffer.from(`Subject: ${subject}\r\n\r\n${body}\r\n`);
  const messages = [m('a'), m('b'), m('a'), m('a', 'other body'), m('a')];
  for (const capa of [['USER', 'TOP', 'PIPELINING'], ['USER', 'TOP']]) {
    const fake = await fakeServer(standard({ capa, messages }));
    const make = (): Pop3Source =>
      new Pop3Source({
        endpoint: { kind: 'pop3', user: 'alice', host: '127.0.0.1', port: fake.port, tls: 'plain' },
        credentials: passwordCredentials('pw'),
        insecure: false,
        streamThreshold: 1 << 20,
        log: silentLogger,
        debug: false,
        noUidl: true,
      });
    const first = make();
    const second = make();
    try {
      const sel = await first.select(first.inbox);
      assert.equal(sel.count, 5);
      assert.equal(sel.mailbox.uidValidity, HEADER_KEYS, 'another numbering than UIDL');
      const ids: string[] = [];
      for await (const meta of first.list(sel.mailbox, () => true)) ids.push(meta.id);
      const a = contentKey(Buffer.from('Subject: a\r\n\r\n'), messages[0]?.length ?? 0);
      assert.match(a, /^h:[0-9a-f]{32}:\d+$/);
      const other = contentKey(Buffer.from('Subject: a\n\n'), messages[3]?.length ?? 0);
      assert.equal(other.split(':')[1], a.split(':')[1], 'the hash is of the LF form');
      assert.notEqual(other, a, 'same headers, another size: another message');
      assert.deepEqual(ids, [a, contentKey(Buffer.from('Subject: b\r\n\r\n'), messages[1]?.length ?? 0), `${a}#2`, other, `${a}#3`]);
      assert.ok(!fake.received.includes('UIDL'), 'UIDL not even asked');
      assert.equal(fake.received.filter((l) => l.startsWith('TOP ')).length, 5);
      const again: string[] = [];
      for await (const meta of second.list(second.inbox, () => true)) again.push(meta.id);
      assert.deepEqual(again, ids, 'the same ids in a new session');
      const fetched: string[] = [];
      for await (const f of first.fetch([{ mailbox: sel.mailbox, id: `${a}#2`, flags: new Set() }], new AbortController().signal)) {
        fetched.push(f.meta.id);
        assert.ok(Buffer.isBuffer(f.body) && f.body.equals(messages[2] as Buffer));
      }
      assert.deepEqual(fetched, [`${a}#2`]);
      assert.equal(await first.delete([a, `${a}#3`, 'h:gone:1']), 2);
      assert.deepEqual(fake.received.slice(-3), ['DELE 1', 'DELE 5', 'QUIT']);
    } finally {
      await first.close();
      await second.close();
      await fake.close();
    }
  }
});

test('headers(): TOP n 0 for each, pipelined under PIPELINING; a refused one is undefined', async () => {
  const messages = [1, 2, 3, 4].map((i) => Buffer.from(`Subject: ${i}\r\n.X: dot\r\n\r\nbody ${i}\r\n`));
  let held: number[] = [];
  let maxHeld = 0;
  const fake = await fakeServer(
    standard({ capa: ['USER', 'TOP', 'PIPELINING'], messages }, (line, sock) => {
      const m = /^TOP (\d+) 0$/.exec(line);
      if (m === null) return false;
      held.push(Number(m[1]));
      maxHeld = Math.max(maxHeld, held.length);
      if (held.length === 3 || held.includes(4)) {
        for (const n of held) {
          const msg = messages[n - 1] as Buffer;
          if (n === 2) sock.write('-ERR no such message\r\n');
          else sock.write(Buffer.concat([Buffer.from('+OK\r\n'), stuff(msg.subarray(0, msg.indexOf('\r\n\r\n') + 4))]));
        }
        held = [];
      }
      return true;
    }),
  );
  try {
    const c = await Pop3Client.connect(opts(fake));
    const got: [number, string | undefined][] = [];
    for await (const h of c.headers([1, 2, 3, 4])) got.push([h.n, h.header?.toString('latin1')]);
    assert.deepEqual(got, [
      [1, 'Subject: 1\r\n.X: dot\r\n\r\n'],
      [2, undefined],
      [3, 'Subject: 3\r\n.X: dot\r\n\r\n'],
      [4, 'Subject: 4\r\n.X: dot\r\n\r\n'],
    ]);
    assert.equal(maxHeld, 3);
    await c.quit();
  } finally {
    await fake.close();
  }
});

test('Source with noUidl on a server that refuses TOP: a usage error', async () => {
  const fake = await fakeServer(standard({ capa: ['USER'], messages: [Buffer.from('Subject: x\r\n\r\nhi\r\n')] }));
  const source = new Pop3Source({
    endpoint: { kind: 'pop3', user: 'alice', host: '127.0.0.1', port: fake.port, tls: 'plain' },
    credentials: passwordCredentials('pw'),
    insecure: false,
    streamThreshold: 1 << 20,
    log: silentLogger,
    debug: false,
    noUidl: true,
  });
  try {
    await rejectsKind(source.select(source.inbox), 'usage', /refuses TOP, which --no-uidl needs/);
  } finally {
    await source.close();
    await fake.close();
  }
});

async function drain(r: Retrieved): Promise<Buffer> {
  if ('refused' in r) throw new Error(`refused: ${r.refused}`);
  if (Buffer.isBuffer(r.body)) return r.body;
  const parts: Buffer[] = [];
  for await (const c of r.body as Readable) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('PIPELINING: several RETR are in flight at once; without it, one at a time', async () => {
  const messages = [1, 2, 3, 4].map((i) => Buffer.from(`Subject: ${i}\r\n\r\n.line ${i}\r\n`));
  // Answers RETRs only once it holds three unanswered ones (or the last): a client that waits
  // for each reply before sending the next would hang here.
  let held: number[] = [];
  let maxHeld = 0;
  const answer = (sock: net.Socket): void => {
    for (const n of held) sock.write(Buffer.concat([Buffer.from('+OK\r\n'), stuff(messages[n - 1] as Buffer)]));
    held = [];
  };
  const fake = await fakeServer(
    standard({ capa: ['USER', 'UIDL', 'PIPELINING'], messages }, (line, sock) => {
      const m = /^RETR (\d+)$/.exec(line);
      if (m === null) return false;
      held.push(Number(m[1]));
      maxHeld = Math.max(maxHeld, held.length);
      if (held.length === 3 || held.includes(4)) answer(sock);
      return true;
    }),
  );
  try {
    const c = await Pop3Client.connect(opts(fake));
    assert.equal(c.pipelining, true);
    const got: Buffer[] = [];
    for await (const r of c.retrieve([1, 2, 3, 4].map((n) => ({ n, size: 30 })), 1 << 20)) got.push(await drain(r));
    assert.deepEqual(got, messages);
    assert.equal(maxHeld, 3);
    await c.quit();
  } finally {
    await fake.close();
  }

  let outstanding = 0;
  let overlap = false;
  const slow = await fakeServer(
    standard({ capa: ['USER', 'UIDL'], messages }, (line, sock) => {
      const m = /^RETR (\d+)$/.exec(line);
      if (m === null) return false;
      if (outstanding > 0) overlap = true;
      outstanding++;
      setTimeout(() => {
        outstanding--;
        sock.write(Buffer.concat([Buffer.from('+OK\r\n'), stuff(messages[Number(m[1]) - 1] as Buffer)]));
      }, 15);
      return true;
    }),
  );
  try {
    const c = await Pop3Client.connect(opts(slow));
    const got: Buffer[] = [];
    for await (const r of c.retrieve([1, 2, 3, 4].map((n) => ({ n, size: 30 })), 1 << 20)) got.push(await drain(r));
    assert.deepEqual(got, messages);
    assert.equal(overlap, false);
    await c.quit();
  } finally {
    await slow.close();
  }
});

test('a connection dropped mid-RETR is a retryable network error (Buffer and stream bodies)', async () => {
  const body = Buffer.alloc(200_000, 0x61);
  for (let i = 80; i < body.length; i += 81) body.write('\r\n', i - 1, 'latin1');
  const fake = await fakeServer(
    standard({ messages: [body] }, (line, sock) => {
      if (!line.startsWith('RETR')) return false;
      sock.write(Buffer.concat([Buffer.from('+OK\r\n'), stuff(body).subarray(0, 50_000)]), () => sock.destroy());
      return true;
    }),
  );
  try {
    for (const threshold of [1 << 20, 1000]) {
      const c = await Pop3Client.connect(opts(fake));
      const run = async (): Promise<void> => {
        for await (const r of c.retrieve([{ n: 1, size: body.length }], threshold)) {
          if (threshold < body.length) assert.ok(!Buffer.isBuffer('body' in r ? r.body : undefined), 'streamed');
          await drain(r);
        }
      };
      await rejectsKind(run(), 'network', /lost|closed/, true);
      assert.equal(c.broken, true);
    }
  } finally {
    await fake.close();
  }
});

test('no answer while a command is outstanding: retryable timeout; an idle session is left alone', async () => {
  const fake = await fakeServer(standard({}, (line) => line === 'LIST'));
  try {
    const c = await Pop3Client.connect(opts(fake, { idleTimeoutMs: 150 }));
    await new Promise((r) => setTimeout(r, 300)); // idle, nothing outstanding: no timeout
    assert.equal(c.broken, false);
    await rejectsKind(c.list(), 'network', /no answer from 127\.0\.0\.1:\d+ for 0\.15 s/, true);
    assert.equal(c.broken, true);
  } finally {
    await fake.close();
  }
});

test('-ERR [SYS/TEMP] on a command is retryable; other -ERR are protocol errors', async () => {
  const fake = await fakeServer(
    standard({}, (line, sock) => {
      if (line === 'LIST') sock.write('-ERR [SYS/TEMP] Try again later\r\n');
      else if (line === 'STAT') sock.write('-ERR nope\r\n');
      else return false;
      return true;
    }),
  );
  try {
    const c = await Pop3Client.connect(opts(fake));
    await rejectsKind(c.list(), 'network', /LIST failed for now: Try again later/, true);
    await rejectsKind(c.stat(), 'protocol', /STAT failed: nope/, false);
    await c.quit();
  } finally {
    await fake.close();
  }
});

test('Source.delete: DELE the session numbers of the given UIDLs, then QUIT; the next call logs in again', async () => {
  const messages = [1, 2, 3].map((i) => Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`));
  const fake = await fakeServer(standard({ messages }));
  const source = new Pop3Source({
    endpoint: { kind: 'pop3', user: 'alice', host: '127.0.0.1', port: fake.port, tls: 'plain' },
    credentials: passwordCredentials('pw'),
    insecure: false,
    streamThreshold: 1 << 20,
    log: silentLogger,
    debug: false,
  });
  try {
    const sel = await source.select(POP3_INBOX);
    assert.equal(sel.count, 3);
    assert.equal(sel.mailbox.uidValidity, undefined);
    await source.delete(['u3', 'u2', 'gone']);
    assert.deepEqual(fake.received.slice(-3), ['DELE 3', 'DELE 2', 'QUIT']);
    assert.equal(fake.connections, 1);
    await source.select(POP3_INBOX);
    assert.equal(fake.connections, 2);
    await source.quit();
    assert.equal(fake.received.at(-1), 'QUIT');
  } finally {
    await source.close();
    await fake.close();
  }
});

test('Source.fetch: an abort mid-stream ends with "interrupted"; the next fetch logs in again', async () => {
  const big = Buffer.concat(Array.from({ length: 40_000 }, (_, i) => Buffer.from(`${i % 7 === 0 ? '.' : ''}line ${i}\r\n`)));
  const fake = await fakeServer(standard({ messages: [big] }));
  const source = new Pop3Source({
    endpoint: { kind: 'pop3', user: 'alice', host: '127.0.0.1', port: fake.port, tls: 'plain' },
    credentials: passwordCredentials('pw'),
    insecure: false,
    streamThreshold: 1000,
    log: silentLogger,
    debug: false,
  });
  try {
    const metas: MessageMeta[] = [];
    for await (const m of source.list(POP3_INBOX, () => true)) metas.push(m);
    assert.equal(metas[0]?.id, 'u1');
    const ac = new AbortController();
    const run = async (): Promise<void> => {
      for await (const f of source.fetch(metas, ac.signal)) {
        const body = f.body as Readable;
        body.once('data', () => ac.abort());
        for await (const _ of body) void _;
      }
    };
    await rejectsKind(run(), 'interrupted');
    const parts: Buffer[] = [];
    for await (const f of source.fetch(metas, new AbortController().signal)) {
      for await (const c of f.body as Readable) parts.push(c as Buffer);
    }
    assert.ok(Buffer.concat(parts).equals(big));
    assert.equal(fake.connections, 2);
  } finally {
    await source.close();
    await fake.close();
  }
});

test('a RETR sent a byte at a time is cut by its deadline, though never idle for the idle timeout', async () => {
  const msg = Buffer.from('Subject: slow\r\n\r\nbody\r\n');
  const { dribble } = await import('../helpers/pop3-peer.js');
  const fake = await fakeServer(
    standard({ messages: [msg] }, (line, sock) => {
      if (line !== 'RETR 1') return false;
      sock.write(`+OK ${msg.length} octets\r\n`);
      dribble(sock, msg, 100);
      return true;
    }),
  );
  try {
    const client = await Pop3Client.connect(opts(fake, { idleTimeoutMs: 500 }));
    const started = Date.now();
    await rejectsKind(
      (async () => {
        for await (const r of client.retrieve([{ n: 1, size: msg.length }], 1 << 20)) void r;
      })(),
      'network',
      /sends too slowly/,
      true,
    );
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
  } finally {
    await fake.close();
  }
});

test('UIDL lines with a space, % signs or 250 characters are names; a listing over its caps is a protocol error', async () => {
  const odd = ['a b', '%'.repeat(70), 'x'.repeat(250)];
  const msgs = odd.map((_, i) => Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`));
  const fake = await fakeServer(standard({ messages: msgs, uidls: odd }));
  try {
    const client = await Pop3Client.connect(opts(fake));
    assert.deepEqual([...((await client.uidl()) ?? new Map()).values()], odd);
    client.destroy();
  } finally {
    await fake.close();
  }
  const { endless } = await import('../helpers/pop3-peer.js');
  const huge = await fakeServer(
    standard({ messages: msgs }, (line, sock) => {
      if (line !== 'LIST') return false;
      sock.write('+OK\r\n');
      endless(sock, Buffer.from('1 100\r\n'.repeat(1000)));
      return true;
    }),
  );
  try {
    const client = await Pop3Client.connect(opts(huge));
    await rejectsKind(client.list(), 'protocol', /LIST|larger than announced/, false);
  } finally {
    await huge.close();
  }
});
