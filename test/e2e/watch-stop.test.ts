/**
 * Where SIGTERM lands decides the exit code of `backup --watch`, against Dovecot: in the middle of
 * a pass that is copying (listed messages not yet archived) it is 130, as any interrupted run, and
 * a rerun completes exactly; between passes (the IDLE wait) after a complete pass it is 0.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { withDovecot, type Account } from '../helpers/server.js';
import { archivedIds, deliverTo, midBurst, serverIds, startWatch, stopBetweenPasses, watchBackupArgs } from '../helpers/watch.js';

const ida: Account = { name: 'stop-ida', password: 'stop-ida-pw' };
const uma: Account = { name: 'stop-uma', password: 'stop-uma-pw' };
const dc = withDovecot({ users: [ida, uma] });

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mf-watch-stop-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('backup --watch: SIGTERM', { skip: dc.skip }, () => {
  test('mid-pass (a burst half copied): exit 130 within seconds, then a rerun: every message exactly once', { timeout: 120_000 }, async () => {
    const archive = join(root, 'mid-pass');
    // The signal lands after the first 1 MiB batch of a 30 x 200 KB burst copied at 2 MB/s.
    const { w, rerun } = await midBurst(dc.server, ida, root, archive);
    const t = Date.now();
    w.child.kill('SIGTERM');
    const end = await w.exited;
    const archived = (await archivedIds(archive)).length;
    process.stderr.write(`watch SIGTERM mid-pass: ${archived} of 31 archived, exit ${String(end.status)} after ${end.at - t} ms\n`);
    assert.ok(archived < 31, `the signal landed mid-pass: ${archived} of 31 archived`);
    assert.equal(end.status, 130, `a pass cut short is an interrupted run\n${w.stderr()}`);
    assert.ok(end.at - t < 5_000, `exited ${end.at - t} ms after SIGTERM`);
    const last = w.events.at(-1);
    assert.equal(last?.['type'], 'error');
    assert.equal(last?.['exit'], 130);
    const r = await runCli(rerun);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(await archivedIds(archive), await serverIds(dc.server, ida, 'INBOX'), 'every message once');
  });

  test('between passes (waiting in IDLE) after a complete pass: exit 0, the summary counts every message', { timeout: 60_000 }, async () => {
    const archive = join(root, 'between');
    await deliverTo(dc.server, uma);
    const w = startWatch(await watchBackupArgs(dc.server, uma, root, archive, ['--watch-heartbeat', '1s']));
    await w.until((e) => e['type'] === 'pass' && e['full'] === true);
    const from = w.events.length;
    await deliverTo(dc.server, uma);
    await w.until((e) => e['type'] === 'pass' && e['messages'] === 1, 10_000, from);
    const end = await stopBetweenPasses(w);
    assert.equal(end.status, 0, w.stderr());
    const summary = w.events.at(-1);
    assert.equal(summary?.['type'], 'summary');
    assert.equal(summary?.['messages'], 2);
    assert.deepEqual(await archivedIds(archive), await serverIds(dc.server, uma, 'INBOX'));
  });
});
