import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SeedMessage } from '../../scripts/dev/seed.js';
import { maildirFolderDir } from '../../src/drivers/archive-paths.js';
import { rfc5322Date } from '../fixtures/nasty.js';
import { readMaildirFolder } from '../helpers/archive.js';
import { runCli, runCliJson as cli, type JsonResult as Out } from '../helpers/cli.js';
import { migrateJson } from '../helpers/migrate.js';
import { fetchAll, withDovecot, type Account } from '../helpers/server.js';

/**
 * --since / --before / --max-size / --unseen-only (one Source wrapper, sources/filter.ts) for
 * backup (IMAP and POP3) and migrate, against messages seeded with known INTERNALDATEs and sizes.
 */
function message(name: string, iso: string, size: number, seen: boolean): SeedMessage & { name: string } {
  const head = `From: a@example.org\r\nTo: b@example.org\r\nSubject: ${name}\r\nDate: ${rfc5322Date(iso)}\r\nMessage-ID: <${name}@filter.test>\r\n\r\n`;
  const body = 'x'.repeat(Math.max(0, size - head.length - 2)) + '\r\n';
  return { name, raw: Buffer.from(head + body), date: new Date(iso), flags: seen ? ['\\Seen'] : [] };
}

const inbox = [
  message('a', '2020-01-10T10:00:00+00:00', 1_000, true),
  message('b', '2021-06-15T10:00:00+00:00', 1_000, false),
  message('c', '2022-03-01T12:00:00+00:00', 60_000, false),
  message('d', '2023-12-31T23:30:00+00:00', 1_000, true),
  message('e', '2024-02-01T00:00:00+00:00', 200_000, true),
];
const work = [message('f', '2022-05-05T08:00:00+00:00', 1_000, false), message('g', '2019-07-07T08:00:00+00:00', 1_000, false)];
const bob: Account = { name: 'filter-bob', password: 'filter-bob-pw' };
const carol: Account = { name: 'filter-carol', password: 'filter-carol-pw' };
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: inbox }, { path: 'Work', messages: work }], users: [bob, carol] });

const subjectOf = (raw: Buffer): string => /^Subject: (.*)$/m.exec(raw.toString('latin1'))?.[1]?.trim() ?? '?';
const names = (raws: Buffer[]): string[] => raws.map(subjectOf).sort();

describe('message filters', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-filter-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  const backup = (dir: string, extra: string[], scheme: 'imaps' | 'pop3s' = 'imaps'): Promise<Out> => {
    const s = dc.server;
    const port = scheme === 'imaps' ? s.imapsPort : s.pop3sPort;
    return cli(
      ['backup', '--json', '--from', `${scheme}://${dc.alice.name}@127.0.0.1:${port}`, '--ca', s.caFile, '--password-env', 'PW', '--to', `maildir:${dir}`, ...extra],
      { PW: dc.alice.password },
    );
  };
  const archived = async (dir: string, path: string): Promise<string[]> =>
    names((await readMaildirFolder(maildirFolderDir(dir, 'maildir++', { path, delimiter: '/' }))).map((m) => m.body));
  const migrate = (user: Account, extra: string[]): Promise<Out> =>
    migrateJson({ server: dc.server, user: dc.alice }, { server: dc.server, user }, root, extra);
  const onServer = async (user: Account, path: string): Promise<string[]> => names((await fetchAll(dc.server, user, path)).map((m) => m.raw));

  test('backup --since --before --max-size: exactly the messages inside; a rerun without filters copies the rest', async () => {
    const dir = join(root, 'md');
    const r = await backup(dir, ['--since', '2021-01-01', '--before', '2024-01-01', '--max-size', '50K']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(await archived(dir, 'INBOX'), ['b', 'd']);
    assert.deepEqual(await archived(dir, 'Work'), ['f']);
    assert.equal(r.out['messages'], 3);
    assert.equal(r.out['filtered'], 4);
    assert.equal(r.out['unchanged'], 0);

    const all = await backup(dir, []);
    assert.equal(all.status, 0, all.stderr);
    assert.equal(all.out['messages'], 4);
    assert.equal(all.out['unchanged'], 3);
    assert.equal(all.out['filtered'], 0);
    assert.deepEqual(await archived(dir, 'INBOX'), ['a', 'b', 'c', 'd', 'e']);
  });

  test('--before is exclusive, --since inclusive, to the second (ISO time with zone)', async () => {
    const dir = join(root, 'md-time');
    const r = await backup(dir, ['--since', '2022-03-01T12:00:00Z', '--before', '2023-12-31T23:30:00Z', '--include', 'INBOX']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(await archived(dir, 'INBOX'), ['c']);
  });

  test('migrate --since --max-size, then --unseen-only into another account; --dry-run plans the same', async () => {
    const plan = await migrate(bob, ['--since', '2022-01-01', '--max-size', '100K', '--dry-run']);
    assert.equal(plan.status, 0, plan.stderr);
    const folders = plan.out['folders'] as { mailbox: string; messages: number }[];
    assert.deepEqual(folders.map((f) => [f.mailbox, f.messages]), [['INBOX', 2], ['Work', 1]]);

    const r = await migrate(bob, ['--since', '2022-01-01', '--max-size', '100K']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(await onServer(bob, 'INBOX'), ['c', 'd']);
    assert.deepEqual(await onServer(bob, 'Work'), ['f']);
    assert.equal(r.out['filtered'], 4);

    const u = await migrate(carol, ['--unseen-only']);
    assert.equal(u.status, 0, u.stderr);
    assert.deepEqual(await onServer(carol, 'INBOX'), ['b', 'c']);
    assert.deepEqual(await onServer(carol, 'Work'), ['f', 'g']);
    assert.equal(u.out['filtered'], 3);
  });

  test('POP3 (last: RETR sets \\Seen): no INTERNALDATE, so the Date: header decides', async () => {
    const dir = join(root, 'md-pop3');
    const r = await backup(dir, ['--since', '2022-01-01', '--max-size', '100000'], 'pop3s');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(await archived(dir, 'INBOX'), ['c', 'd']);
    assert.equal(r.out['filtered'], 3);
  });

  test('bad filter flags: every problem at once, exit 2, nothing done', async () => {
    const r = await runCli(
      ['backup', '--from', 'pop3s://u@127.0.0.1', '--password-env', 'PW', '--to', `maildir:${join(root, 'never')}`,
        '--since', '2024-02-31', '--before', 'yesterday', '--max-size', '10X', '--unseen-only'],
      { PW: 'x' },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    for (const flag of ['--since', '--before', '--max-size', '--unseen-only']) assert.match(r.stderr, new RegExp(`${flag} `));
  });
});
