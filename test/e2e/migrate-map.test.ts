import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDovecot, type DovecotServer } from '../../scripts/dev/dovecot.js';
import { nastyMailbox } from '../fixtures/nasty.js';
import { runCli } from '../helpers/cli.js';
import { assertSameFolder, messageCount, selectableFolders } from '../helpers/compare.js';
import { fetchAll, withDovecot, type Account } from '../helpers/server.js';

/**
 * migrate between two Dovecots with different namespaces: the source "/" with \Sent on "Sent", the
 * target "." with \Sent on "Sent Items". Special-use roles, --map and delimiters, folder by folder.
 */
const dc = withDovecot({ nasty: { bigMessage: false }, dovecot: { specialUse: { Sent: '\\Sent', Drafts: '\\Drafts' } } });
const target: Account = { name: 'map-target', password: 'map-target-pw' };
const source = nastyMailbox({ bigMessage: false });
const total = source.reduce((n, f) => n + f.messages.length, 0);

/** Where each source folder must land on the target. */
function expected(path: string): string {
  if (path === 'Sent') return 'Sent Items';
  if (path === 'Archive/2023') return 'Old.2023';
  return path.split('/').join('.');
}

describe('migrate maps folders: special-use roles, --map, delimiters', { skip: dc.skip }, () => {
  let root = '';
  let tgt: DovecotServer | undefined;
  const server = (): DovecotServer => {
    if (tgt === undefined) throw new Error('target Dovecot not running');
    return tgt;
  };

  async function migrate(extra: string[] = []): Promise<{ status: number | null; out: Record<string, unknown>; stderr: string }> {
    const s = dc.server;
    const t = server();
    const args = [
      'migrate', '--json',
      '--from', `imaps://${dc.alice.name}@127.0.0.1:${s.imapsPort}`, '--ca', s.caFile, '--password-env', 'ALICE_PW',
      '--to', `imaps://${target.name}@127.0.0.1:${t.imapsPort}`, '--target-ca', t.caFile, '--target-password-env', 'TARGET_PW',
      '--map', 'Archive/2023=Old/2023',
      ...extra,
    ];
    const r = await runCli(args, { ALICE_PW: dc.alice.password, TARGET_PW: target.password, XDG_STATE_HOME: join(root, 'state') }, { timeoutMs: 120_000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    return { status: r.status, out: JSON.parse(line === '' ? '{}' : line) as Record<string, unknown>, stderr: r.stderr };
  }

  before(async () => {
    if (dc.skip !== false) return;
    root = await mkdtemp(join(tmpdir(), 'mf-migrate-map-'));
    tgt = await startDovecot({ users: [{ ...target }], separator: '.', specialUse: { 'Sent Items': '\\Sent', Drafts: '\\Drafts' } });
  });
  after(async () => {
    await tgt?.stop();
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('--dry-run names each target folder and which ones a real run would create; creates none', async () => {
    const r = await migrate(['--dry-run']);
    assert.equal(r.status, 0, r.stderr);
    const plan = new Map((r.out['folders'] as { mailbox: string; target?: string; create?: boolean }[]).map((p) => [p.mailbox, p]));
    assert.deepEqual(plan.get('Sent'), { ...plan.get('Sent'), target: 'Sent Items', create: false });
    assert.deepEqual(plan.get('Archive/2023'), { ...plan.get('Archive/2023'), target: 'Old.2023', create: true });
    assert.deepEqual(plan.get('Projects/Client A/Reports'), { ...plan.get('Projects/Client A/Reports'), target: 'Projects.Client A.Reports', create: true });
    assert.equal(plan.get('INBOX')?.create, false);
    assert.deepEqual(await selectableFolders(server(), target), ['Drafts', 'INBOX', 'Sent Items']);
  });

  test('Sent -> "Sent Items", nested folders with ".", --map; rerun appends nothing', async () => {
    const first = await migrate();
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.out['messages'], total, first.stderr);

    const folders = await selectableFolders(server(), target);
    assert.equal(folders.includes('Sent'), false, folders.join(', '));
    assert.equal(folders.includes('Archive.2023'), false, folders.join(', '));
    for (const f of source) {
      const want = expected(f.path);
      if (f.path === 'Deep/Child' || f.messages.length > 0 || f.path === 'Empty') assert.ok(folders.includes(want), `${want} in ${folders.join(', ')}`);
      assertSameFolder(`${f.path} -> ${want}`, await fetchAll(dc.server, dc.alice, f.path), await fetchAll(server(), target, want));
    }
    assert.ok(folders.includes('Projects.Client A.Reports'));
    assert.equal(await messageCount(server(), target), total);

    const again = await migrate();
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], 0);
    assert.equal(await messageCount(server(), target), total);
  });
});
