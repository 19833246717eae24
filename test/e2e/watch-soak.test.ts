/**
 * `backup --watch` for longer, against Dovecot: kill -9 while it copies a burst of deliveries, then
 * a plain rerun: every message archived exactly once (exit 0). A soak of a message every second
 * for 75 s: every one archived once, and peak RSS (VmHWM) flat between the first third and the end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { withDovecot, type Account } from '../helpers/server.js';
import { archivedIds, deliverTo, midBurst, serverIds, startWatch, stopBetweenPasses, watchBackupArgs } from '../helpers/watch.js';

const kai: Account = { name: 'soak-kai', password: 'soak-kai-pw' };
const sam: Account = { name: 'soak-sam', password: 'soak-sam-pw' };
const dc = withDovecot({ users: [kai, sam] });

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mf-watch-soak-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Peak RSS so far (VmHWM), or RSS now (VmRSS), of a process, in MiB. */
function mib(pid: number, field: 'VmHWM' | 'VmRSS' = 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) / 1024;
}

describe('backup --watch over time', { skip: dc.skip }, () => {
  test('kill -9 while it copies a burst, then a rerun: every message archived exactly once', { timeout: 120_000 }, async () => {
    const archive = join(root, 'killed');
    const { w, rerun } = await midBurst(dc.server, kai, root, archive);
    w.child.kill('SIGKILL');
    const end = await w.exited;
    assert.equal(end.signal, 'SIGKILL');
    const before = (await archivedIds(archive)).length;
    process.stderr.write(`watch kill -9: ${before} of 31 archived when killed\n`);
    assert.ok(before > 1 && before < 31, `killed mid-copy: ${before} of 31 archived`);
    const r = await runCli(rerun);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(await archivedIds(archive), await serverIds(dc.server, kai, 'INBOX'), 'every message once');
  });

  test('soak: a message every second for 75 s, each archived once, peak RSS flat', { timeout: 180_000 }, async () => {
    const archive = join(root, 'soak');
    const w = startWatch(await watchBackupArgs(dc.server, sam, root, archive, ['--watch-heartbeat', '5s', '--watch-interval', '20s']));
    try {
      await w.until((e) => e['type'] === 'pass' && e['full'] === true);
      const pid = w.child.pid ?? 0;
      const started = Date.now();
      let sent = 0;
      let third = 0;
      let rss = 0;
      while (Date.now() - started < 75_000) {
        await deliverTo(dc.server, sam, 'INBOX', 2_000);
        sent++;
        if (third === 0 && Date.now() - started > 25_000) {
          third = mib(pid);
          rss = mib(pid, 'VmRSS');
        }
        await new Promise((r) => setTimeout(r, Math.max(0, started + sent * 1000 - Date.now())));
      }
      await w.until(() => w.events.filter((e) => e['type'] === 'message').length >= sent, 20_000);
      const peak = mib(pid);
      process.stderr.write(
        `watch soak: ${sent} messages in 75 s; peak RSS ${third.toFixed(1)} MiB after 25 s, ${peak.toFixed(1)} MiB at the end (RSS ${rss.toFixed(1)} -> ${mib(pid, 'VmRSS').toFixed(1)} MiB)\n`,
      );
      assert.ok(peak - third < 12, `peak RSS grew from ${third.toFixed(1)} to ${peak.toFixed(1)} MiB`);
      assert.equal(w.events.filter((e) => e['type'] === 'message').length, sent, 'one event per message');
      assert.ok(w.events.filter((e) => e['type'] === 'heartbeat').length >= 10, 'a heartbeat every 5 s');
      assert.deepEqual(await archivedIds(archive), await serverIds(dc.server, sam, 'INBOX'), 'every message once');
    } finally {
      // Every message is archived: the signal lands between passes (after a heartbeat), so exit 0.
      assert.equal((await stopBetweenPasses(w)).status, 0, w.stderr());
    }
  });
});
