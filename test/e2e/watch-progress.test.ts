/**
 * `backup --watch` on a terminal (a pty from util-linux `script`): the first run's progress line is
 * taken off the screen when that run ends, so it does not stay under the watch's own lines as if
 * the first run were still going; later passes draw none.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smallMessages } from '../fixtures/nasty.js';
import { CLI_BIN, REPO_ROOT } from '../helpers/cli.js';
import { withDovecot } from '../helpers/server.js';
import { deliverTo, watchBackupArgs } from '../helpers/watch.js';

const dc = withDovecot({ seed: [{ path: 'INBOX', messages: smallMessages(40, 7) }] });

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mf-watch-pty-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const quote = (a: string): string => `'${a.replaceAll("'", "'\\''")}'`;
const CLEAR = '\r\x1b[K';

/** Resolves once `check()` is true, polling every 100 ms; rejects after `ms`. */
async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('backup --watch on a terminal', { skip: dc.skip || process.platform !== 'linux' }, () => {
  test('the first run\'s progress line is cleared when it ends; later passes draw none', { timeout: 60_000 }, async () => {
    const log = join(root, 'watch.log');
    const args = (await watchBackupArgs(dc.server, dc.alice, root, join(root, 'archive'))).filter((a) => a !== '--json');
    const cmd = [process.execPath, CLI_BIN, ...args, '--log-file', log].map(quote).join(' ');
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: REPO_ROOT, env: { ...process.env, COLUMNS: '120' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      screen += d;
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', (status) => resolve(status)));
    const logged = (re: RegExp) => async (): Promise<boolean> => re.test(await readFile(log, 'utf8').catch(() => ''));
    try {
      await until('the first run', logged(/watch: full pass: /));
      await new Promise((r) => setTimeout(r, 300)); // the pty passes on what was written
      // A progress line is CLEAR then its text ("listing folders…", "INBOX 3/40 · …": a small
      // mailbox may finish before a folder's line is drawn); the last one must be cleared.
      const lines = [...screen.matchAll(/\r\x1b\[K([^\r\n\x1b]+)/g)];
      const last = lines.at(-1);
      assert.ok(last !== undefined, `a progress line was drawn: ${JSON.stringify(screen.slice(-300))}`);
      assert.ok(screen.indexOf(CLEAR, (last.index ?? 0) + 1) > (last.index ?? 0), `cleared after the first run: ${JSON.stringify(screen.slice(-200))}`);
      const from = screen.length;
      await deliverTo(dc.server, dc.alice);
      await until('the delivery', logged(/watch: INBOX: /));
      await new Promise((r) => setTimeout(r, 300));
      assert.doesNotMatch(screen.slice(from), /\r\x1b\[K[^\r\n\x1b]/, 'a later pass draws no progress line');
    } finally {
      // The watch is script's child: signal it, not script (which would hang up the pty).
      const kids = await readFile(`/proc/${child.pid ?? 0}/task/${child.pid ?? 0}/children`, 'utf8').catch(() => '');
      for (const pid of kids.trim().split(/\s+/).filter((p) => p !== '')) process.kill(Number(pid), 'SIGTERM');
      if (kids.trim() === '') child.kill('SIGTERM');
      await exited;
    }
  });
});
