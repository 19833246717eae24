import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, utimes, readFile, stat } from 'node:fs/promises';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { acquireLock } from '../../src/state/lock.js';
import { MailferryError } from '../../src/domain/errors.js';

const isLocked = (e: unknown): boolean => e instanceof MailferryError && e.kind === 'locked';

test('a second lock on the same archive is refused, then granted after release', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-lock-'));
  const path = join(dir, '.mailferry.lock');
  const first = await acquireLock(path);
  assert.match(await readFile(path, 'utf8'), new RegExp(`^${process.pid} ${hostname()} `));
  assert.equal((await stat(path)).mode & 0o077, 0);
  await assert.rejects(acquireLock(path), isLocked);
  await first.release();
  const again = await acquireLock(path);
  await again.release();
});

test('an empty lock file is refused while fresh and taken over once stale', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-lock-'));
  const path = join(dir, '.mailferry.lock');
  await writeFile(path, '');
  await assert.rejects(acquireLock(path), (e: unknown) => isLocked(e) && /damaged/.test((e as Error).message));
  const old = new Date(Date.now() - 120_000);
  await utimes(path, old, old);
  const lock = await acquireLock(path);
  await lock.release();
});

test('a link planted at a guessable temporary name is never written through', async () => {
  const { symlink } = await import('node:fs/promises');
  const dir = await mkdtemp(join(tmpdir(), 'mf-lock-link-'));
  const victim = join(dir, 'victim');
  await writeFile(victim, 'precious\n');
  const path = join(dir, 'archive.lock');
  // The names an earlier version used: `<lock>.<pid>.tmp`.
  await symlink(victim, `${path}.${process.pid}.tmp`);
  const lock = await acquireLock(path);
  await lock.release();
  assert.equal(await readFile(victim, 'utf8'), 'precious\n');
});

test('a lock held by a zombie (killed, not reaped) is taken over', async () => {
  const { spawn } = await import('node:child_process');
  // sh starts a short sleep, then becomes a long one that never reaps it: the short one turns zombie.
  const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    const deadline = Date.now() + 5000;
    const zombie = async (): Promise<boolean> => {
      const st = await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => '');
      return st.slice(st.lastIndexOf(')') + 2).startsWith('Z');
    };
    while (!(await zombie())) {
      assert.ok(Date.now() < deadline, `pid ${pid} never became a zombie`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const dir = await mkdtemp(join(tmpdir(), 'mf-lock-zombie-'));
    const path = join(dir, 'archive.lock');
    await writeFile(path, `${pid} ${hostname()} ${new Date().toISOString()}\n`);
    const lock = await acquireLock(path);
    assert.match(await readFile(path, 'utf8'), new RegExp(`^${process.pid} `));
    await lock.release();
  } finally {
    parent.kill('SIGKILL');
  }
});
