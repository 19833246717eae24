import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, test } from 'node:test';
import { startWanProxy, type WanProxy } from '../../scripts/bench/wan-proxy.js';

/** A loopback server; `onConnection` wires each socket (echo, sink, ...). */
async function server(onConnection: (s: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    onConnection(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const a = srv.address();
  if (a === null || typeof a === 'string') throw new Error('no port');
  return {
    port: a.port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function echoBehind(delayMs: number, bytesPerS?: number): Promise<WanProxy> {
  const echo = await server((s) => s.pipe(s));
  const proxy = await startWanProxy({ targetPort: echo.port, delayMs, ...(bytesPerS === undefined ? {} : { bytesPerS }) });
  cleanups.push(() => proxy.close(), () => echo.close());
  return proxy;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads until `n` bytes arrived; resolves with them and the time the last one came. */
function readN(s: net.Socket, n: number): Promise<{ data: Buffer; at: number }> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer): void => {
      parts.push(d);
      got += d.length;
      if (got >= n) {
        s.off('data', onData);
        resolve({ data: Buffer.concat(parts), at: performance.now() });
      }
    };
    s.on('data', onData);
    s.once('error', reject);
  });
}

test('a round trip through the link takes at least twice the one-way delay', async () => {
  const proxy = await echoBehind(60);
  const s = await connect(proxy.port);
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const reply = readN(s, 5);
    s.write('ping\n');
    const { data, at } = await reply;
    assert.equal(data.toString(), 'ping\n');
    const rtt = at - started;
    assert.ok(rtt >= 119, `round trip ${rtt.toFixed(1)} ms, expected >= 120 ms`);
    assert.ok(rtt < 400, `round trip ${rtt.toFixed(1)} ms: far more than 2 x 60 ms`);
  }
  s.destroy();
});

test('bytes arrive exact and in order, whatever the chunking', async () => {
  const proxy = await echoBehind(5);
  const s = await connect(proxy.port);
  const payload = randomBytes(3 * 1024 * 1024 + 17);
  const back = readN(s, payload.length);
  // Uneven writes, so the queue holds many chunks of many sizes at once.
  for (let at = 0, n = 1; at < payload.length; at += n, n = (n * 7 + 13) % 70_000 + 1) {
    s.write(payload.subarray(at, at + n));
  }
  const { data } = await back;
  assert.equal(data.length, payload.length);
  assert.ok(data.equals(payload), 'the echoed bytes differ from those sent');
  s.destroy();
});

test('the bandwidth cap limits one connection\'s throughput (within 20%)', async () => {
  const rate = 2_000_000;
  const size = 1_500_000;
  let got = 0;
  let arrived: () => void = () => undefined;
  const all = new Promise<void>((r) => {
    arrived = r;
  });
  const sink = await server((s) =>
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= size) arrived();
    }),
  );
  const proxy = await startWanProxy({ targetPort: sink.port, delayMs: 0, bytesPerS: rate });
  cleanups.push(() => proxy.close(), () => sink.close());
  const c = await connect(proxy.port);
  const started = performance.now();
  c.write(randomBytes(size));
  await all;
  const measured = size / ((performance.now() - started) / 1000);
  c.destroy();
  assert.ok(Math.abs(measured - rate) / rate <= 0.2, `throughput ${(measured / 1e6).toFixed(2)} MB/s against a cap of ${rate / 1e6} MB/s`);
});

test('the link counts the client\'s turns and IMAP commands by verb', async () => {
  const proxy = await echoBehind(1);
  const s = await connect(proxy.port);
  const lines = 'A1 SELECT INBOX\r\n';
  let r = readN(s, lines.length);
  s.write(lines);
  await r;
  const two = 'A2 UID FETCH 1:* (UID FLAGS RFC822.SIZE)\r\nA3 UID FETCH 1:5 (UID BODY.PEEK[])\r\nA4 APPEND x {3}\r\nA5 \r\n';
  r = readN(s, two.length);
  s.write(two);
  await r;
  s.destroy();
  const c = proxy.connections[0];
  assert.ok(c !== undefined);
  assert.equal(c.turns, 2);
  assert.deepEqual(c.commands, { SELECT: 1, 'UID FETCH meta': 1, 'UID FETCH body': 1, APPEND: 1 });
  assert.deepEqual(c.turnLog, ['SELECT', 'UID FETCH meta+UID FETCH body+APPEND']);
});
