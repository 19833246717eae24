import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toLf } from '../../src/formats/fingerprint.js';
import { maildirFolderDir, mboxFolderFile } from '../../src/drivers/archive-paths.js';
import { nastyMailbox } from '../fixtures/nasty.js';
import { readMaildirFolder, readMboxFile } from '../helpers/archive.js';
import { runCli } from '../helpers/cli.js';
import { assertSameAccount, messageCount, sec, selectableFolders, sysFlags } from '../helpers/compare.js';
import { fetchAll, withDovecot, type Account } from '../helpers/server.js';

const bob: Account = { name: 'migrate-bob', password: 'migrate-bob-pw' };
const carol: Account = { name: 'migrate-carol', password: 'migrate-carol-pw' };
const dan: Account = { name: 'migrate-dan', password: 'migrate-dan-pw' };
const dc = withDovecot({ nasty: true, users: [bob, carol, dan] });
const selectable = nastyMailbox().map((f) => f.path);
const total = nastyMailbox().reduce((n, f) => n + f.messages.length, 0);

const sameAccount = (user: Account): Promise<void> => assertSameAccount(dc.server, dc.alice, user, selectable);
const countOf = (user: Account): Promise<number> => messageCount(dc.server, user);

describe('migrate one IMAP account into another', { skip: dc.skip }, () => {
  let root = '';

  function migrateArgs(user: Account, extra: string[] = []): string[] {
    const s = dc.server;
    return [
      'migrate', '--json',
      '--from', `imaps://${dc.alice.name}@127.0.0.1:${s.imapsPort}`,
      '--ca', s.caFile,
      '--password-env', 'ALICE_PW',
      '--to', `imap://${user.name}@127.0.0.1:${s.imapPort}`,
      '--target-ca', s.caFile,
      '--target-password-env', 'TARGET_PW',
      ...extra,
    ];
  }

  async function migrate(user: Account, extra: string[] = [], pw = user.password): Promise<{ status: number | null; out: Record<string, unknown>; stderr: string }> {
    const r = await runCli(migrateArgs(user, extra), { ALICE_PW: dc.alice.password, TARGET_PW: pw, XDG_STATE_HOME: join(root, 'state') }, { timeoutMs: 120_000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    return { status: r.status, out: JSON.parse(line === '' ? '{}' : line) as Record<string, unknown>, stderr: r.stderr };
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-migrate-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('--dry-run plans every message and changes nothing', async () => {
    const r = await migrate(bob, ['--dry-run', '--archive', `maildir:${join(root, 'dry-md')}`]);
    assert.equal(r.status, 0, r.stderr);
    const plan = r.out['folders'] as { mailbox: string; messages: number }[];
    assert.equal(plan.reduce((n, p) => n + p.messages, 0), total);
    assert.deepEqual(await selectableFolders(dc.server, bob), ['INBOX']);
    await assert.rejects(stat(join(root, 'state')));
    await assert.rejects(stat(join(root, 'dry-md')));
  });

  test('alice -> bob (STARTTLS target): same folders, bytes, flags, dates; a rerun appends nothing', async () => {
    const first = await migrate(bob);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.out['messages'], total);
    await sameAccount(bob);
    const dir = join(root, 'state', 'mailferry');
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1);
    const state = await readFile(join(dir, files[0] as string), 'utf8');
    assert.equal(state.includes(dc.alice.password) || state.includes(bob.password), false);

    const again = await migrate(bob);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], 0);
    assert.equal(await countOf(bob), total);
  });

  test('--archive maildir:DIR writes the local copy in the same pass; rerun appends nothing', async () => {
    const md = join(root, 'md');
    const first = await migrate(carol, ['--archive', `maildir:${md}`, '--target-connections', '2']);
    assert.equal(first.status, 0, first.stderr);
    await sameAccount(carol);
    for (const path of selectable) {
      const server = await fetchAll(dc.server, dc.alice, path);
      const archived = await readMaildirFolder(maildirFolderDir(md, 'maildir++', { path, delimiter: '/' }));
      assert.equal(archived.length, server.length, `archive ${path}`);
      for (const m of server) {
        const a = archived.find((x) => x.uid === String(m.uid));
        assert.ok(a !== undefined && a.body.equals(toLf(m.raw)), `archive ${path} UID ${m.uid}`);
        assert.deepEqual(a.flags, sysFlags(m.flags), `archive ${path} UID ${m.uid} flags`);
        assert.equal(sec(a.date), sec(m.internalDate), `archive ${path} UID ${m.uid} date`);
      }
    }
    const again = await migrate(carol, ['--archive', `maildir:${md}`]);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], 0);
    assert.equal(await countOf(carol), total);
  });

  test('--archive mbox:DIR writes the same mbox files and state, byte for byte, as backup does', async () => {
    const viaMigrate = join(root, 'mbox-migrate');
    const viaBackup = join(root, 'mbox-backup');
    // Small batches, fetched in parallel: every folder with messages spans several.
    const m = await migrate(dan, ['--archive', `mbox:${viaMigrate}`, '--batch-mb', '0.01']);
    assert.equal(m.status, 0, m.stderr);
    const b = await runCli(
      ['backup', '--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'ALICE_PW', '--to', `mbox:${viaBackup}`, '--batch-mb', '0.05'],
      { ALICE_PW: dc.alice.password },
    );
    assert.equal(b.status, 0, b.stderr);
    const files = async (dir: string): Promise<string[]> =>
      (await readdir(dir, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile() && !e.name.endsWith('.lock'))
        .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
        .sort();
    const names = await files(viaBackup);
    assert.deepEqual(await files(viaMigrate), names);
    assert.ok(names.includes('.mailferry-state.json'), names.join(', '));
    for (const name of names) assert.ok((await readFile(join(viaMigrate, name))).equals(await readFile(join(viaBackup, name))), `${name} differs`);
    const source = `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`;
    for (const path of selectable) {
      const archived = await readMboxFile(mboxFolderFile(viaMigrate, { path, delimiter: '/' }), viaMigrate, path, source);
      assert.equal(archived.length, (await fetchAll(dc.server, dc.alice, path)).length, path);
    }
  });

  test('a wrong target password exits 4 with one line; a missing one is a usage error (2)', async () => {
    const bad = await migrate(bob, [], 'wrong');
    assert.equal(bad.status, 4, bad.stderr);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    const r = await runCli(migrateArgs(bob), { ALICE_PW: dc.alice.password, XDG_STATE_HOME: join(root, 'state') });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /TARGET_PW is not set/);
  });
});
