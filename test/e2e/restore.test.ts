import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Account } from '../helpers/server.js';
import { nastyMailbox } from '../fixtures/nasty.js';
import { runCli } from '../helpers/cli.js';
import { assertSameAccount, assertSameFolder, messageCount, selectableFolders } from '../helpers/compare.js';
import { connect, fetchAll, withDovecot } from '../helpers/server.js';

const rmd: Account = { name: 'restore-md', password: 'restore-md-pw' };
const rmbox: Account = { name: 'restore-mbox', password: 'restore-mbox-pw' };
const rnamed: Account = { name: 'restore-named', password: 'restore-named-pw' };
const dc = withDovecot({ nasty: true, users: [rmd, rmbox, rnamed] });
const selectable = nastyMailbox().map((f) => f.path);

const sameAccount = (user: Account): Promise<void> => assertSameAccount(dc.server, dc.alice, user, selectable);
const countOf = (user: Account): Promise<number> => messageCount(dc.server, user);

describe('restore a backup archive into a fresh IMAP account', { skip: dc.skip }, () => {
  let root = '';
  let stateHome = '';
  const env = (): Record<string, string> => ({ ALICE_PW: dc.alice.password, TARGET_PW: 'x', XDG_STATE_HOME: stateHome });

  function restoreArgs(from: string, user: Account, extra: string[] = []): string[] {
    return [
      'restore', '--json',
      '--from', from,
      '--to', `imaps://${user.name}@127.0.0.1:${dc.server.imapsPort}`,
      '--ca', dc.server.caFile,
      '--password-env', 'TARGET_PW',
      ...extra,
    ];
  }

  async function restore(from: string, user: Account, extra: string[] = []): Promise<{ status: number | null; out: Record<string, unknown>; stderr: string }> {
    const r = await runCli(restoreArgs(from, user, extra), { ...env(), TARGET_PW: user.password }, { timeoutMs: 120_000 });
    const line = r.stdout.trim().split('\n').pop() ?? '{}';
    return { status: r.status, out: JSON.parse(line === '' ? '{}' : line) as Record<string, unknown>, stderr: r.stderr };
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-restore-'));
    stateHome = join(root, 'state');
    const r = await runCli(
      [
        'backup', '--json',
        '--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`,
        '--ca', dc.server.caFile,
        '--password-env', 'ALICE_PW',
        '--to', `maildir:${join(root, 'md')}`,
        '--to', `mbox:${join(root, 'mbox')}`,
      ],
      env(),
    );
    assert.equal(r.status, 0, r.stderr);
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('--dry-run prints the plan and changes nothing', async () => {
    const r = await restore(`maildir:${join(root, 'md')}`, rmd, ['--dry-run']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.out['type'], 'plan');
    const plan = r.out['folders'] as { mailbox: string; messages: number; bytes: number }[];
    const byPath = new Map(plan.map((p) => [p.mailbox, p]));
    for (const f of nastyMailbox()) {
      assert.equal(byPath.get(f.path)?.messages, f.messages.length, `plan for ${f.path}`);
      if (f.messages.length > 0) assert.ok((byPath.get(f.path)?.bytes ?? 0) > 0, `bytes for ${f.path}`);
    }
    assert.deepEqual(await selectableFolders(dc.server, rmd), ['INBOX']);
    assert.equal(await countOf(rmd), 0);
    await assert.rejects(stat(join(stateHome, 'mailferry')), 'no state written by a dry run');
    // Text form.
    const t = await runCli(restoreArgs(`maildir:${join(root, 'md')}`, rmd, ['--dry-run']).filter((a) => a !== '--json'), { ...env(), TARGET_PW: rmd.password });
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /^dry run: nothing was changed/);
    assert.match(t.stdout, /Archive\/2023: \d+ messages/);
  });

  test('Maildir archive: same folders, bytes, flags and dates as alice; a rerun appends nothing', async () => {
    const from = `maildir:${join(root, 'md')}`;
    const first = await restore(from, rmd);
    assert.equal(first.status, 0, first.stderr);
    const total = nastyMailbox().reduce((n, f) => n + f.messages.length, 0);
    assert.equal(first.out['messages'], total);
    await sameAccount(rmd);

    // The state: under $XDG_STATE_HOME/mailferry, private, no secret, the archive as its source.
    const dir = join(stateHome, 'mailferry');
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1);
    assert.equal(first.out['state'], join(dir, files[0] as string));
    assert.match(files[0] as string, /^target-[0-9a-f]{16}\.json$/);
    assert.equal((await stat(join(dir, files[0] as string))).mode & 0o777, 0o600);
    const state = await readFile(join(dir, files[0] as string), 'utf8');
    assert.equal(state.includes(rmd.password), false);
    assert.equal((JSON.parse(state) as { source: string }).source, from);
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.lock')), [], 'lock released');

    const again = await restore(from, rmd);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], 0);
    assert.equal(await countOf(rmd), total);
    const dry = await restore(from, rmd, ['--dry-run']);
    assert.equal(dry.status, 0, dry.stderr);
    assert.ok((dry.out['folders'] as { messages: number }[]).every((p) => p.messages === 0), JSON.stringify(dry.out));
  });

  test('mbox archive: same folders, bytes, flags and dates as alice; a rerun appends nothing', async () => {
    const from = `mbox:${join(root, 'mbox')}`;
    const stateFile = join(root, 'mbox-restore-state.json');
    const first = await restore(from, rmbox, ['--state', stateFile]);
    assert.equal(first.status, 0, first.stderr);
    await sameAccount(rmbox);
    assert.equal((await stat(stateFile)).mode & 0o777, 0o600);
    const total = await countOf(rmbox);
    const again = await restore(from, rmbox, ['--state', stateFile]);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], 0);
    assert.equal(await countOf(rmbox), total);
  });

  test('a target whose Sent folder is "Sent Items" without a SPECIAL-USE flag: found by name, no "Sent" created', async () => {
    const c = await connect(dc.server, rnamed);
    try {
      await c.mailboxCreate('Sent Items');
    } finally {
      await c.logout();
    }
    const r = await restore(`maildir:${join(root, 'md')}`, rnamed, ['--include', 'Sent']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(await selectableFolders(dc.server, rnamed), ['INBOX', 'Sent Items']);
    const sent = await fetchAll(dc.server, dc.alice, 'Sent');
    assert.ok(sent.length > 0);
    assertSameFolder('Sent -> Sent Items', sent, await fetchAll(dc.server, rnamed, 'Sent Items'));
  });

  test('a live lock on the target state exits 7 with one line and changes nothing', async () => {
    const stateFile = join(root, 'locked-state.json');
    await writeFile(`${stateFile}.lock`, `${process.pid} ${hostname()} ${new Date().toISOString()}\n`);
    const before = await countOf(rmd);
    const r = await restore(`maildir:${join(root, 'md')}`, rmd, ['--state', stateFile]);
    assert.equal(r.status, 7, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /another mailferry run/);
    await assert.rejects(stat(stateFile));
    assert.equal(await countOf(rmd), before);
  });

  test('errors: wrong target password exits 4, missing archive 2, both in one line', async () => {
    const bad = await runCli(restoreArgs(`maildir:${join(root, 'md')}`, rmd), { ...env(), TARGET_PW: 'wrong' });
    assert.equal(bad.status, 4, bad.stderr);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    const missing = await runCli(restoreArgs(`maildir:${join(root, 'nope')}`, rmd), { ...env(), TARGET_PW: rmd.password });
    assert.equal(missing.status, 2, missing.stderr);
    assert.match(missing.stderr, /^mailferry: no archive at /);
  });
});
