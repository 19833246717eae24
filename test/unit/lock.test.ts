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
