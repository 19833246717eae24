import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SeedMessage } from '../../scripts/dev/seed.js';
import type { JsonResult } from '../helpers/cli.js';
import { migrateJson } from '../helpers/migrate.js';
import { assertSameFolder, selectableFolders } from '../helpers/compare.js';
import { readMaildirFolder } from '../helpers/archive.js';
import { maildirFolderDir } from '../../src/drivers/archive-paths.js';
import { fetchAll, withDovecot, type Account } from '../helpers/server.js';

/**
 * The target refuses: one message too large (Dovecot quota_max_mail_size: NO [LIMIT]), the account
 * full (quota storage: NO [OVERQUOTA]), a folder name it cannot hold (NO [CANNOT]). Each is reported
 * with its folder (and message), the rest is copied, exit 3; once the limit is raised a rerun copies
 * exactly what was left.
 */
function message(name: string, size: number): SeedMessage {
  const head = `From: a@example.org\r\nSubject: ${name}\r\nMessage-ID: <${name}@errors.test>\r\n\r\n`;
  return { raw: Buffer.from(head + 'z'.repeat(size - head.length - 2) + '\r\n'), flags: ['\\Seen'], date: new Date('2024-01-02T03:04:05Z') };
}

const inbox = [message('i1', 2000), message('i2', 2000), message('big', 30_000), message('i3', 2000), message('i4', 2000)];
const work = [message('w1', 2000), message('w2', 2000), message('w3', 2000)];
const refused = [message('r1', 2000)];
const folders = ['INBOX', 'Refused', 'Work'];
const total = inbox.length + work.length + refused.length;
const erin: Account = { name: 'errors-erin', password: 'errors-erin-pw' };
const frank: Account = { name: 'errors-frank', password: 'errors-frank-pw' };
const gina: Account = { name: 'errors-gina', password: 'errors-gina-pw' };
const dc = withDovecot({
  seed: [{ path: 'INBOX', messages: inbox }, { path: 'Work', messages: work }, { path: 'Refused', messages: refused }],
  users: [{ ...erin, quota: { maxMailSize: '20k' } }, { ...frank, quota: { storage: '12k' } }, { ...gina, quota: { storage: '12k' } }],
  dovecot: { quota: true },
});
type Skip = { mailbox: string; id?: string; reason: string };

describe('migrate: refused messages, a full target, a folder the target refuses', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-migrate-errors-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  const migrate = (user: Account, extra: string[] = []): Promise<JsonResult> =>
    migrateJson({ server: dc.server, user: dc.alice }, { server: dc.server, user }, root, extra);
  const count = async (user: Account, path: string): Promise<number> => (await fetchAll(dc.server, user, path)).length;
  const assertSame = async (user: Account): Promise<void> => {
    for (const path of folders) assertSameFolder(`${user.name} ${path}`, await fetchAll(dc.server, dc.alice, path), await fetchAll(dc.server, user, path));
  };

  test('one message too large and one folder name refused: both reported, the rest copied, exit 3; a rerun copies what was left', async () => {
    const bigUid = String((await fetchAll(dc.server, dc.alice, 'INBOX'))[2]?.uid);
    const tooLong = 'n'.repeat(300);
    const r = await migrate(erin, ['--map', `Refused=${tooLong}`]);
    assert.equal(r.status, 3, r.stderr);
    const skipped = r.out['skipped'] as Skip[];
    assert.equal(skipped.length, 2, JSON.stringify(skipped));
    const msg = skipped.find((x) => x.mailbox === 'INBOX');
    assert.equal(msg?.id, bigUid, JSON.stringify(skipped));
    assert.match(msg?.reason ?? '', /refused the message/);
    const folder = skipped.find((x) => x.mailbox === 'Refused');
    assert.ok(folder !== undefined && folder.id === undefined, JSON.stringify(skipped));
    assert.match(folder.reason, /cannot create folder/);
    assert.match(r.stderr, new RegExp(`skipped INBOX message ${bigUid}: `));
    assert.equal(r.out['messages'], total - 2);
    assert.equal(await count(erin, 'INBOX'), inbox.length - 1);
    assert.equal(await count(erin, 'Work'), work.length);
    assert.equal((await selectableFolders(dc.server, erin)).includes('Refused'), false);

    await dc.server.addUser({ ...erin, quota: { maxMailSize: '100k' } });
    const again = await migrate(erin);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], 2);
    await assertSame(erin);
  });

  test('target over quota: copying stops with a clear line, exit 3; after raising the quota a rerun finishes, nothing twice', async () => {
    const r = await migrate(frank, ['--connections', '1', '--target-connections', '1']);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /over quota/);
    const skipped = r.out['skipped'] as Skip[];
    assert.ok(skipped.length >= 1 && skipped.every((x) => /over quota/.test(x.reason)), JSON.stringify(skipped));
    const copied = r.out['messages'] as number;
    assert.ok(copied > 0 && copied < total, `copied ${copied}`);
    let onTarget = 0;
    for (const path of await selectableFolders(dc.server, frank)) onTarget += await count(frank, path);
    assert.equal(onTarget, copied);

    await dc.server.addUser({ ...frank, quota: { storage: '1M' } });
    const again = await migrate(frank);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], total - copied);
    await assertSame(frank);
  });

  test('target over quota with --archive: the target stops, the archive gets every message, exit 3; a rerun finishes the target, the archive gets nothing twice', async () => {
    const md = join(root, 'gina-archive');
    const archived = async (): Promise<number> => {
      let n = 0;
      for (const path of folders) n += (await readMaildirFolder(maildirFolderDir(md, 'maildir++', { path, delimiter: '/' }))).length;
      return n;
    };
    const r = await migrate(gina, ['--connections', '1', '--target-connections', '1', '--archive', `maildir:${md}`]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /over quota .*; copying to imaps:\/\/\S+ stopped \(the other destination goes on\)/);
    const skipped = r.out['skipped'] as Skip[];
    assert.ok(skipped.length >= 1 && skipped.every((x) => /^not copied to imaps:\/\/.*over quota/.test(x.reason)), JSON.stringify(skipped));
    assert.equal(await archived(), total, 'every message archived although the target is full');
    let onTarget = 0;
    for (const path of await selectableFolders(dc.server, gina)) onTarget += await count(gina, path);
    assert.ok(onTarget > 0 && onTarget < total, `on target ${onTarget}`);
    assert.equal(r.out['messages'], total);

    await dc.server.addUser({ ...gina, quota: { storage: '1M' } });
    const again = await migrate(gina, ['--archive', `maildir:${md}`]);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], total - onTarget);
    assert.equal(await archived(), total, 'the archive got nothing twice');
    await assertSame(gina);
  });
});
