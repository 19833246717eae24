/**
 * `mailferry backup --dry-run` (and its alias `--check`) against Dovecot: it logs in, lists every
 * folder with what a real run would copy (messages, bytes) and what the archive already holds,
 * writes nothing (no archive directory, no state, no lock) and takes no lock, so it works while a
 * cron run holds one; exit 0 when the run would work, the real exit code when it would not.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedMailbox } from '../../scripts/dev/seed.js';
import { smallMessages } from '../fixtures/nasty.js';
import { lastJson, runCli, type CliResult } from '../helpers/cli.js';
import { withDovecot } from '../helpers/server.js';

const dc = withDovecot({ seed: [{ path: 'Work', messages: smallMessages(5, 3) }, { path: 'Work/2023', messages: smallMessages(2, 4) }] });

function show(r: CliResult): string {
  return `exit ${String(r.status)}\n--- stderr\n${r.stderr}--- stdout\n${r.stdout}`;
}

interface Planned {
  mailbox: string;
  messages: number;
  bytes: number;
  present?: number;
}

describe('backup --dry-run', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-dry-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  const run = (dir: string, extra: string[]): Promise<CliResult> =>
    runCli(['backup', '--from', `imaps://alice@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'PW', '--to', `maildir:${dir}`, ...extra],
      { PW: dc.alice.password, XDG_STATE_HOME: join(root, 'state') }, { timeoutMs: 120_000 });
  const planOf = (r: CliResult): Map<string, Planned> => {
    const out = lastJson(r.stdout) as { type?: string; folders?: Planned[] };
    assert.equal(out.type, 'plan', show(r));
    return new Map((out.folders ?? []).map((f) => [f.mailbox, f]));
  };

  test('on a fresh archive: every folder with its messages and bytes; nothing created', async () => {
    const dir = join(root, 'fresh');
    const r = await run(dir, ['--dry-run']);
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdout, /^dry run: nothing was changed; a real run would copy 7 messages \([\d.]+ MB\) in \d+ folders:$/m, show(r));
    assert.match(r.stdout, /^ {2}Work: 5 messages, [\d.]+ MB$/m, show(r));
    assert.match(r.stdout, /^ {2}Work\/2023: 2 messages, [\d.]+ MB$/m, show(r));
    assert.equal(existsSync(dir), false, 'the archive directory was created');
    const json = await run(dir, ['--check', '--json']);
    assert.equal(json.status, 0, show(json));
    const work = planOf(json).get('Work');
    assert.equal(work?.messages, 5);
    assert.ok((work?.bytes ?? 0) > 0);
    assert.equal(existsSync(dir), false);
  });

  test('after a backup: only what is new, what is there already; no lock taken, nothing written, while a run holds the lock', async () => {
    const dir = join(root, 'again');
    const first = await run(dir, []);
    assert.equal(first.status, 0, show(first));
    await seedMailbox(dc.server, dc.alice, [{ path: 'Work', messages: smallMessages(1, 9) }]);
    // Another run holds the lock (this process, alive on this host): a real backup stops with 7.
    const lock = join(dir, '.mailferry.lock');
    await writeFile(lock, `${process.pid} ${hostname()} ${new Date().toISOString()}\n`, { mode: 0o600 });
    const before = await snapshot(dir);
    const r = await run(dir, ['--dry-run', '--json']);
    assert.equal(r.status, 0, show(r));
    const plan = planOf(r);
    assert.deepEqual({ messages: plan.get('Work')?.messages, present: plan.get('Work')?.present }, { messages: 1, present: 5 });
    assert.deepEqual({ messages: plan.get('Work/2023')?.messages, present: plan.get('Work/2023')?.present }, { messages: 0, present: 2 });
    assert.deepEqual(await snapshot(dir), before, 'the dry run changed the archive');
    const text = await run(dir, ['--check']);
    assert.equal(text.status, 0, show(text));
    assert.match(text.stdout, /^ {2}Work: 1 messages, [\d.]+ MB \(5 already there\)$/m, show(text));
    const real = await run(dir, []);
    assert.equal(real.status, 7, show(real));
    await rm(lock);
  });

  test('a run that would fail fails the same way: a wrong password is exit 4', async () => {
    const r = await runCli(['backup', '--from', `imaps://alice@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'PW', '--to', `maildir:${join(root, 'x')}`, '--dry-run'],
      { PW: 'wrong', XDG_STATE_HOME: join(root, 'state') });
    assert.equal(r.status, 4, show(r));
  });
});

/** Every file under `dir` with its bytes: what a dry run must leave as it was. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const p = join(e.parentPath, e.name);
    out.set(p, e.isFile() ? (await readFile(p)).toString('base64') : e.isDirectory() ? 'dir' : 'other');
  }
  return out;
}
