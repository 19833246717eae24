/**
 * The resumable body stream of the IMAP source (src/drivers/imap/download.ts) over a ChunkReader
 * of our own making: a byte array, and connections that are "lost" where the test says. What the
 * stream does with the server is in test/e2e/streamed.test.ts (Dovecot behind a poor link).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MailferryError } from '../../src/domain/errors.js';
import { resumableBody, type ChunkReader } from '../../src/drivers/imap/download.js';
import { silentLogger } from '../../src/log/logger.js';

const CHUNK = 1000;
const message = Buffer.from(Array.from({ length: 10_500 }, (_, i) => i % 251));

/** Reads `data`; the connection is lost on the reads numbered in `lose` (counted from 1); every read logged by its start. */
function reader(data: Buffer, lose: ReadonlySet<number>): ChunkReader & { starts: number[]; lengths: number[]; reconnects: number; abandoned: number } {
  let n = 0;
  const r = {
    starts: [] as number[],
    lengths: [] as number[],
    reconnects: 0,
    abandoned: 0,
    read: (start: number, length: number): Promise<Buffer | false> => {
      r.starts.push(start);
      r.lengths.push(length);
      if (lose.has(++n)) return Promise.reject(new MailferryError('network', 'connection lost', { retryable: true }));
      return Promise.resolve(data.subarray(start, start + length));
    },
    reconnect: (): Promise<void> => {
      r.reconnects++;
      return Promise.resolve();
    },
    abandon: (): void => {
      r.abandoned++;
    },
  };
  return r;
}

async function drain(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of stream) parts.push(b);
  return Buffer.concat(parts);
}

const opts = (size: number) => ({ size, chunk: CHUNK, signal: new AbortController().signal, log: silentLogger, what: 'INBOX message 7', resume: true, baseMs: 1 });

describe('resumableBody', () => {
  test('each chunk asked for is twice the last, up to maxChunk: fewer round trips for a large message, the bytes whole', async () => {
    const big = Buffer.from(Array.from({ length: 40_500 }, (_, i) => i % 253));
    const r = reader(big, new Set());
    const got = await drain(resumableBody(r, { ...opts(big.length), first: big.subarray(0, CHUNK), maxChunk: 8 * CHUNK }));
    assert.ok(got.equals(big));
    assert.deepEqual(r.lengths, [2000, 4000, 8000, 8000, 8000, 8000, 8000]);
    assert.deepEqual(r.starts, [1000, 3000, 7000, 15000, 23000, 31000, 39000]);
  });

  test('a lost connection mid-growth: resumed from the first byte not received, in first-size chunks from then on (a cut loses at most one)', async () => {
    const big = Buffer.from(Array.from({ length: 9_500 }, (_, i) => i % 241));
    const r = reader(big, new Set([2]));
    const got = await drain(resumableBody(r, { ...opts(big.length), first: big.subarray(0, CHUNK), maxChunk: 4 * CHUNK }));
    assert.ok(got.equals(big));
    assert.deepEqual(r.starts, [1000, 3000, 3000, 4000, 5000, 6000, 7000, 8000, 9000]);
    assert.deepEqual(r.lengths, [2000, 4000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]);
  });

  test('lost connections: resumed from the first byte not received, never from 0 again; the bytes are whole', async () => {
    const r = reader(message, new Set([2, 5, 6]));
    const first = message.subarray(0, CHUNK);
    const got = await drain(resumableBody(r, { ...opts(message.length), first }));
    assert.ok(got.equals(message));
    assert.equal(r.reconnects, 3);
    // Each lost read is asked again from the same offset after the reconnect.
    assert.deepEqual(r.starts.slice(0, 3), [1000, 2000, 2000]);
    assert.equal(r.starts.filter((s) => s === 0).length, 0);
  });

  test('resumed, and the bytes do not add up to RFC822.SIZE: the stream fails (retryable), and says so', async () => {
    let told = 0;
    const r = reader(message, new Set([3]));
    const body = resumableBody(r, { ...opts(message.length + 10), first: message.subarray(0, CHUNK), onMismatch: () => told++ });
    await assert.rejects(drain(body), (e: unknown) => e instanceof MailferryError && e.retryable && /RFC822\.SIZE/.test(e.message));
    assert.equal(told, 1);
  });

  test('a size that is a multiple of the chunk ends with an empty read', async () => {
    const exact = message.subarray(0, 3 * CHUNK);
    const r = reader(exact, new Set());
    const got = await drain(resumableBody(r, { ...opts(exact.length), first: exact.subarray(0, CHUNK) }));
    assert.ok(got.equals(exact));
    assert.deepEqual(r.starts, [1000, 2000, 3000]);
  });

  test('not resumed: a size off RFC822.SIZE is taken as sent', async () => {
    const r = reader(message, new Set());
    const got = await drain(resumableBody(r, { ...opts(message.length + 10), first: message.subarray(0, CHUNK) }));
    assert.equal(got.length, message.length);
  });

  test('no progress RETRY.attempts times in a row: fails with the lost connection', async () => {
    const r = reader(message, new Set([1, 2, 3, 4, 5, 6, 7, 8]));
    await assert.rejects(drain(resumableBody(r, { ...opts(message.length), first: message.subarray(0, CHUNK) })), (e: unknown) => e instanceof MailferryError && e.kind === 'network');
    assert.equal(r.reconnects, 5);
  });

  test('resume: false (fetched whole): the first lost connection fails the stream', async () => {
    const r = reader(message, new Set([1]));
    await assert.rejects(drain(resumableBody(r, { ...opts(message.length), resume: false, first: message.subarray(0, CHUNK) })), MailferryError);
    assert.equal(r.reconnects, 0);
  });

  test('destroyed by its consumer with a read in flight: the connection is abandoned', async () => {
    let release: () => void = () => undefined;
    const r = reader(message, new Set());
    const slow: ChunkReader = { ...r, read: (s, l) => new Promise((resolve) => (release = () => resolve(message.subarray(s, s + l)))) };
    let abandoned = 0;
    const body = resumableBody({ ...slow, abandon: () => abandoned++ }, { ...opts(message.length), first: message.subarray(0, CHUNK) });
    body.read(); // the first chunk, then a read in flight
    await new Promise((resolve) => setImmediate(resolve));
    body.destroy();
    assert.equal(abandoned, 1);
    release();
  });
});
