import { test } from 'node:test';
import { getEventListeners } from 'node:events';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailferryError } from '../../src/domain/errors.js';
import type { MessageMeta } from '../../src/domain/message.js';
import { silentLogger } from '../../src/log/logger.js';
import { withRetry } from '../../src/domain/retry.js';
import { DailyBudget } from '../../src/sources/daily-budget.js';
import { DEFAULT_THROTTLE_MS, mapImapError } from '../../src/drivers/imap/errors.js';
import { RateLimiter } from '../../src/sources/rate-limit.js';

/** An error shaped as imapflow 2.1.2 rejects a command with a tagged NO/BAD (imap-flow.js, case 'NO'). */
function imapNo(code: string | undefined, text: string, status = 'NO'): Error {
  const attributes = code === undefined ? [] : [{ type: 'ATOM', value: '', section: [{ type: 'ATOM', value: code }] }];
  return Object.assign(new Error('Command failed'), { response: { tag: 'A5', command: status, attributes }, responseStatus: status, responseText: text });
}

test('throttling replies map to a retryable error with the time to wait', () => {
  const throttled = mapImapError(imapNo('THROTTLED', 'Too many commands'), 'imap.example.org');
  assert.equal(throttled.retryable, true);
  assert.equal(throttled.retryAfterMs, DEFAULT_THROTTLE_MS);
  assert.match(throttled.message, /imap\.example\.org is throttling us \(Too many commands\)/);

  assert.equal(mapImapError(imapNo('UNAVAILABLE', 'Try later'), 'h').retryAfterMs, DEFAULT_THROTTLE_MS);
  const ms = mapImapError(imapNo(undefined, 'Request is throttled. Suggested Backoff Time: 1234 milliseconds'), 'h');
  assert.equal(ms.retryAfterMs, 1234);
  assert.equal(ms.retryable, true);
  assert.equal(mapImapError(imapNo('THROTTLED', 'Suggested Backoff Time: 250 milliseconds'), 'h').retryAfterMs, 250);

  // imapflow's own Microsoft handling: ETHROTTLE after it waited part of the hint itself.
  const eth = Object.assign(new Error('Command failed'), { code: 'ETHROTTLE', throttleReset: 5000, throttleWaited: 2000, responseStatus: 'BAD' });
  assert.equal(mapImapError(eth, 'h').retryAfterMs, 3000);
  // A BYE with the hint: imapflow's NoConnection error carries the BYE text as `reason`.
  const bye = Object.assign(new Error('Connection not available'), { code: 'NoConnection', reason: 'Server busy. Suggested Backoff Time: 800 milliseconds' });
  assert.equal(mapImapError(bye, 'h').retryAfterMs, 800);

  // Not throttling: a plain NO stays a folder problem, a dropped connection a plain retry.
  const no = mapImapError(imapNo('NONEXISTENT', 'Mailbox does not exist'), 'h');
  assert.equal(no.kind, 'mailbox');
  assert.equal(no.retryable, false);
  assert.equal(no.retryAfterMs, undefined);
  const reset = mapImapError(Object.assign(new Error('x'), { code: 'ECONNRESET' }), 'h');
  assert.equal(reset.retryable, true);
  assert.equal(reset.retryAfterMs, undefined);
});

test('withRetry waits as long as a throttled server asks, without using up the failure attempts', async () => {
  let calls = 0;
  const started = Date.now();
  const out = await withRetry(
    'fetch',
    async () => {
      calls++;
      if (calls <= 3) throw new MailferryError('network', 'throttled', { retryAfterMs: 150 });
      return 'done';
    },
    { attempts: 1, baseMs: 10_000, log: silentLogger, signal: new AbortController().signal },
  );
  assert.equal(out, 'done');
  assert.equal(calls, 4);
  const took = Date.now() - started;
  assert.ok(took >= 440 && took < 5000, `waited ${took} ms for 3 x 150 ms`);

  // An ordinary retryable failure still gives up after `attempts`.
  let failures = 0;
  await assert.rejects(
    withRetry('fetch', async () => {
      failures++;
      throw new MailferryError('network', 'dropped', { retryable: true });
    }, { attempts: 2, baseMs: 1, log: silentLogger, signal: new AbortController().signal }),
    /dropped/,
  );
  assert.equal(failures, 2);
});

const msg = (id: number, size: number): MessageMeta => ({ mailbox: { path: 'INBOX', delimiter: '/' }, id: String(id), size, flags: new Set() });

test('DailyBudget: takes the leading messages that fit, then stops; counts what came; a new UTC day starts over', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-budget-'));
  try {
    let now = new Date('2026-03-01T23:00:00Z');
    const identity = 'imaps://me@imap.example.org:993';
    const b = await DailyBudget.open(dir, identity, 'download', 1000, silentLogger, () => now);
    const first = b.reserve([msg(1, 300), msg(2, 300), msg(3, 300), msg(4, 300), msg(5, 10)]);
    assert.deepEqual(first.take.map((m) => m.id), ['1', '2', '3']);
    assert.equal(first.bytes, 900);
    assert.equal(b.reached, true);
    // Once reached, nothing more this run, not even a message that would fit.
    assert.equal(b.reserve([msg(5, 10)]).take.length, 0);
    await b.settle(first.bytes, 900);
    assert.equal(b.used, 900);
    const state = JSON.parse(await readFile(b.path, 'utf8')) as { day: string; bytes: number; account: string };
    assert.deepEqual(state, { version: 1, account: 'imap:me@imap.example.org', day: '2026-03-01', bytes: 900 });
    assert.equal((await stat(b.path)).mode & 0o777, 0o600);

    // A second run the same day shares the count.
    const again = await DailyBudget.open(dir, 'imap://me@imap.example.org:143', 'download', 1000, silentLogger, () => now);
    assert.equal(again.used, 900);
    assert.deepEqual(again.reserve([msg(6, 100), msg(7, 1)]).take.map((m) => m.id), ['6']);

    // After midnight UTC the count starts again, mid-run too.
    now = new Date('2026-03-02T00:00:01Z');
    assert.equal(again.used, 0);
    assert.equal(again.reached, false);
    const next = await DailyBudget.open(dir, identity, 'download', 1000, silentLogger, () => now);
    assert.equal(next.used, 0);
    assert.equal(next.reserve([msg(8, 1000)]).take.length, 1);

    // A message larger than a whole day's budget goes alone at the start of a day, never after others.
    const big = await DailyBudget.open(dir, 'imaps://big@imap.example.org:993', 'download', 1000, silentLogger, () => now);
    assert.deepEqual(big.reserve([msg(9, 5000), msg(10, 1)]).take.map((m) => m.id), ['9']);
    assert.equal(big.reached, true);
    const later = await DailyBudget.open(dir, 'imaps://later@imap.example.org:993', 'download', 1000, silentLogger, () => now);
    assert.deepEqual(later.reserve([msg(11, 1), msg(12, 5000)]).take.map((m) => m.id), ['11']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('RateLimiter: a burst of one second, then the rate', async () => {
  const limiter = new RateLimiter(100_000);
  const signal = new AbortController().signal;
  const started = Date.now();
  await limiter.take(100_000, signal); // the burst: at once
  assert.ok(Date.now() - started < 200);
  await limiter.take(50_000, signal); // half a second more
  await limiter.take(50_000, signal); // and another half
  const took = Date.now() - started;
  assert.ok(took >= 950 && took < 3000, `took ${took} ms for 2 s of data with a 1 s burst`);
});

test('RateLimiter: a long paced run leaves no abort listener behind on the run signal (no MaxListenersExceededWarning)', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  try {
    const limiter = new RateLimiter(1_000_000);
    const signal = new AbortController().signal;
    // A second's burst, then 40 chunks of 1 kB at 1 MB/s: each take sleeps about 1 ms on the same signal.
    await limiter.take(1_000_000, signal);
    for (let i = 0; i < 40; i++) await limiter.take(1_000, signal);
    assert.equal(getEventListeners(signal, 'abort').length, 0);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings.map((w) => w.name), []);
  } finally {
    process.off('warning', onWarning);
  }
});
