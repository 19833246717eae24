import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { Flow } from '../../src/pipeline/flow.js';

/** Bytes on their way (src/pipeline/flow.ts): counted as read, throttled, dropped with a failed attempt. */

async function drain(r: Readable): Promise<number> {
  let n = 0;
  for await (const c of r) n += (c as Buffer).length;
  return n;
}

test('a streamed body is counted as it is read, and the run is told at most every 250 ms', async () => {
  let clock = 0;
  const told: number[] = [];
  const flow = new Flow((_m, streaming) => told.push(streaming), 250, () => clock);
  const tally = flow.batch('INBOX');
  const chunks = Array.from({ length: 40 }, () => Buffer.alloc(64 * 1024, 0x61));
  const body = Readable.from(chunks.map((c, i) => c.subarray(0, i === 39 ? 1000 : c.length)));
  const counted = tally.count(body) as Readable;
  let n = 0;
  for await (const c of counted) {
    n += (c as Buffer).length;
    clock += 50; // a chunk every 50 ms: 2 s in all
    assert.ok(flow.bytes >= n, 'counted no later than the reader sees it');
  }
  assert.equal(n, 39 * 64 * 1024 + 1000, 'the bytes pass unchanged');
  assert.equal(flow.bytes, n);
  assert.ok(told.length >= 6 && told.length <= 9, `told ${told.length} times for 2 s of streaming`);
  assert.ok(told.every((v, i) => i === 0 || v > (told[i - 1] as number)), 'growing');
  tally.close();
  assert.equal(flow.bytes, 0, 'committed: the bytes leave the count (the report counts them now)');
  tally.close();
  assert.equal(flow.bytes, 0, 'close is idempotent');
});

test('a retried message is not counted twice: the failed attempt drops its bytes, later chunks of it are not counted', async () => {
  const flow = new Flow(() => undefined, 0);
  const first = flow.batch('INBOX');
  const cut = new PassThrough();
  const counted = first.count(cut) as Readable;
  const reading = drain(counted).catch((e: unknown) => e);
  cut.write(Buffer.alloc(3_000_000));
  await new Promise((r) => setImmediate(r));
  assert.equal(flow.bytes, 3_000_000);
  const lost = new Error('connection lost');
  cut.destroy(lost);
  assert.equal(await reading, lost, "the body's error reaches the reader as it came");
  first.close();
  assert.equal(flow.bytes, 0);
  const second = flow.batch('INBOX');
  await drain(second.count(Readable.from([Buffer.alloc(5_000_000)])) as Readable);
  second.count(Buffer.alloc(1000));
  assert.equal(flow.bytes, 5_001_000, 'only the attempt that went through');
  second.close();
  assert.equal(flow.bytes, 0);
});

test('a reader that stops early stops the body too', async () => {
  const flow = new Flow(() => undefined);
  const body = new PassThrough();
  const counted = flow.batch('INBOX').count(body) as Readable;
  body.write(Buffer.alloc(10));
  counted.destroy();
  await new Promise((r) => setImmediate(r));
  assert.equal(body.destroyed, true);
});
