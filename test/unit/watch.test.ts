/**
 * Watch mode's flags (config/watch.ts) and its loop (pipeline/watch.ts) on passes of our own:
 * durations and flag combinations checked with the other flags; a transient failure of a pass is
 * tried again after the backoff, for ever, a fatal one ends the watch; the signal ends it at
 * once with the last complete pass's outcome, or as interrupted before the first one completed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseWatch, watchConnections } from '../../src/config/watch.js';
import { MailferryError } from '../../src/domain/errors.js';
import { backoffMs } from '../../src/domain/retry.js';
import { silentLogger } from '../../src/log/logger.js';
import { watchLoop, type WatchEvent } from '../../src/pipeline/watch.js';
import { RunReport } from '../../src/report.js';
import type { FolderWatch } from '../../src/sources/source.js';

test('--watch flags: durations, defaults, combinations', () => {
  const problems: string[] = [];
  assert.equal(parseWatch(problems, {}), undefined);
  assert.deepEqual(parseWatch(problems, { watch: true }), { intervalMs: 900_000, heartbeatMs: 60_000, folders: ['INBOX'] });
  assert.deepEqual(parseWatch(problems, { watch: true, watchInterval: '90s', watchHeartbeat: '2', watchFolders: ['Work', 'inbox', 'Work'] }), {
    intervalMs: 90_000,
    heartbeatMs: 2_000,
    folders: ['INBOX', 'Work'],
  });
  assert.equal(parseWatch(problems, { watch: true, watchInterval: '1.5h' })?.intervalMs, 5_400_000);
  assert.deepEqual(problems, []);
  parseWatch(problems, { watch: true, watchInterval: '0.5s' });
  parseWatch(problems, { watch: true, watchInterval: '15 minutes' });
  parseWatch(problems, { watchInterval: '1m' });
  parseWatch(problems, { watch: true, verify: '' });
  parseWatch(problems, { watch: true, dryRun: true });
  assert.equal(problems.length, 5, problems.join('\n'));
  assert.match(problems[2] ?? '', /go with --watch/);
  assert.equal(watchConnections(4, 5, { intervalMs: 1, heartbeatMs: 1, folders: ['INBOX', 'Work'] }, 'imap'), 3, 'within the cap with 2 IDLE sessions');
  assert.equal(watchConnections(4, 2, { intervalMs: 1, heartbeatMs: 1, folders: ['INBOX', 'Work'] }, 'imap'), 1, 'at least one');
  assert.equal(watchConnections(4, 2, { intervalMs: 1, heartbeatMs: 1, folders: ['INBOX'] }, 'pop3'), 4);
  assert.deepEqual([0, 1, 2, 5, 6, 7, 100].map((n) => backoffMs(n, { baseMs: 1000, maxMs: 60_000 })), [1000, 2000, 4000, 32_000, 60_000, 60_000, 60_000]);
});

const opts = (signal: AbortSignal, events: WatchEvent[] = []) => ({ intervalMs: 60_000, heartbeatMs: 60_000, backoff: { baseMs: 10, maxMs: 40 }, signal, log: silentLogger, onEvent: (e: WatchEvent) => events.push(e) });

function report(messages: number, skipped = 0): RunReport {
  const r = new RunReport();
  r.messages = messages;
  for (let i = 0; i < skipped; i++) r.skipped.push({ mailbox: 'INBOX', reason: 'test' });
  return r;
}

test('a pass that fails for a transient reason is tried again, for ever; the signal ends the watch with the last pass outcome', async () => {
  const stop = new AbortController();
  let calls = 0;
  const started = Date.now();
  const result = await watchLoop(async () => {
    calls++;
    if (calls <= 6) throw new MailferryError('network', 'connection refused by 127.0.0.1:1');
    stop.abort();
    return report(3);
  }, opts(stop.signal));
  assert.equal(calls, 7, 'six failures, then a pass');
  assert.ok(Date.now() - started < 2_000, `the backoff stays capped at 40 ms (${Date.now() - started} ms)`);
  assert.equal(result.messages, 3);
  assert.equal(result.exitCode, 0);
});

test('a fatal error ends the watch; the signal before a complete pass is an interruption', async () => {
  const never = new AbortController();
  await assert.rejects(
    watchLoop(() => Promise.reject(new MailferryError('auth', 'login refused')), opts(never.signal)),
    (e: unknown) => e instanceof MailferryError && e.kind === 'auth',
  );
  await assert.rejects(
    watchLoop(() => Promise.reject(new MailferryError('destination', 'cannot write archive: no space left on device')), opts(never.signal)),
    (e: unknown) => e instanceof MailferryError && e.exitCode === 6,
  );
  const stop = new AbortController();
  await assert.rejects(
    watchLoop(() => {
      stop.abort();
      return Promise.reject(new MailferryError('interrupted', 'interrupted'));
    }, opts(stop.signal)),
    (e: unknown) => e instanceof MailferryError && e.exitCode === 130,
  );
});

test('a partial pass brings the next full pass forward; the exit code is the last pass', async () => {
  const stop = new AbortController();
  const events: WatchEvent[] = [];
  let calls = 0;
  const result = await watchLoop(async (only) => {
    assert.equal(only, undefined, 'full passes only (no FolderWatch)');
    calls++;
    if (calls === 3) stop.abort();
    return report(1, calls === 3 ? 0 : 1);
  }, opts(stop.signal, events));
  assert.equal(calls, 3);
  assert.equal(result.exitCode, 0, 'the last pass left nothing behind');
  assert.equal(events.filter((e) => e.type === 'pass').length, 3);
});

test('the signal in a pass after a complete one is still an interruption (130): that pass listed what it did not copy', async () => {
  const stop = new AbortController();
  const events: WatchEvent[] = [];
  let calls = 0;
  await assert.rejects(
    watchLoop(
      async () => {
        if (++calls === 1) return report(2);
        stop.abort();
        throw new MailferryError('network', 'connection closed'); // what the stop makes surface
      },
      { ...opts(stop.signal, events), intervalMs: 300, heartbeatMs: 1 },
    ),
    (e: unknown) => e instanceof MailferryError && e.exitCode === 130,
  );
  assert.equal(calls, 2);
  const beat = events.find((e) => e.type === 'heartbeat' && e.passes === 1);
  assert.equal(beat?.type === 'heartbeat' && beat.waiting, true, 'after the pass, the heartbeat says the watch waits');
});

test('a folder pass vouches only for its folders: what the last full pass skipped elsewhere is still reported (exit 3)', async () => {
  const stop = new AbortController();
  const told: string[][] = [['INBOX'], ['Work']];
  const changes: FolderWatch = {
    live: 1,
    changes: async () => {
      const next = told.shift();
      if (next !== undefined) return next;
      stop.abort();
      return [];
    },
    close: async () => undefined,
  };
  const passes: (readonly string[] | undefined)[] = [];
  const result = await watchLoop(async (only) => {
    passes.push(only);
    const r = new RunReport();
    r.messages = 1;
    if (only === undefined) r.skipped.push({ mailbox: 'Work', id: '7', reason: 'refused by the server' }, { mailbox: 'Archive', id: '9', reason: 'refused by the server' });
    return r;
  }, opts(stop.signal), changes);
  assert.deepEqual(passes, [undefined, ['INBOX'], ['Work']]);
  // INBOX's pass says nothing of Work or Archive; Work's pass copied 7 (no skip): Archive's 9 is left.
  assert.deepEqual(result.skipped.map((x) => `${x.mailbox} ${x.id ?? ''}`), ['Archive 9']);
  assert.equal(result.exitCode, 3);
});
