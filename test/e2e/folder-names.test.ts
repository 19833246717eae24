import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SeedFolder } from '../../scripts/dev/seed.js';
import { foldClashes } from '../helpers/fold-clashes.js';
import { runCliJson } from '../helpers/cli.js';
import { assertSameAccount } from '../helpers/compare.js';
import { withDovecot, type Account } from '../helpers/server.js';

/**
 * Folder names Dovecot holds apart that one place on disk would merge: NFC and NFD `Café`, `Work`
 * and `work` (on a case-insensitive file system), `cur`, `new`, `tmp` (under `--layout fs`, INBOX's
 * own Maildir directories), `INBOX` under another parent. Backed up into each archive format and
 * layout: no two names a case-insensitive, normalising file system would merge, a rerun writes
 * nothing, and a restore into a fresh account gives back every folder under its name with its
 * messages.
 */
const NAMES = ['Caf\u00e9', 'Cafe\u0301', 'Work', 'work', 'cur', 'new', 'tmp', 'a/INBOX', 'INBOX/x', 'a/b'];
const raw = (folder: string, i: number): Buffer =>
  Buffer.from(`Subject: ${encodeURIComponent(folder)} ${i}\r\nMessage-ID: <${i}.${encodeURIComponent(folder)}@names>\r\n\r\nkept in ${folder}\r\n`, 'utf8');
const seed: SeedFolder[] = [
  { path: 'INBOX', messages: [{ raw: raw('INBOX', 1), flags: ['\\Seen'] }] },
  ...NAMES.map((path) => ({ path, messages: [1, 2].map((i) => ({ raw: raw(path, i), flags: i === 1 ? ['\\Flagged'] : [] })) })),
];

const users: Account[] = ['md', 'fs', 'mbox'].map((k) => ({ name: `names-${k}`, password: `names-${k}-pw` }));
const dc = withDovecot({ seed, users });

describe('colliding folder names: backup, rerun, restore', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-names-e2e-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  const archives = [
    { name: 'Maildir++', to: () => `maildir:${join(root, 'md')}`, extra: [] as string[], user: users[0] as Account },
    { name: 'Maildir fs', to: () => `maildir:${join(root, 'fs')}`, extra: ['--layout', 'fs'], user: users[1] as Account },
    { name: 'mbox', to: () => `mbox:${join(root, 'mbox')}`, extra: [] as string[], user: users[2] as Account },
  ];
  for (const a of archives) {
    test(`${a.name}: every folder apart on disk, a rerun writes nothing, restore gives every folder back`, async () => {
      const env = { ALICE_PW: dc.alice.password, TARGET_PW: a.user.password, XDG_STATE_HOME: join(root, 'state') };
      const backup = [
        'backup', '--json',
        '--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`,
        '--ca', dc.server.caFile,
        '--password-env', 'ALICE_PW',
        '--to', a.to(),
        ...a.extra,
      ];
      const first = await runCliJson(backup, env);
      assert.equal(first.status, 0, first.stderr);
      assert.equal(first.out['messages'], 1 + NAMES.length * 2, first.stderr);
      assert.deepEqual(await foldClashes(a.to().replace(/^[a-z]+:/, '')), []);
      const again = await runCliJson(backup, env);
      assert.equal(again.status, 0, again.stderr);
      assert.equal(again.out['messages'], 0, 'a rerun writes nothing');
      const restore = await runCliJson(
        [
          'restore', '--json',
          '--from', a.to(),
          '--to', `imaps://${a.user.name}@127.0.0.1:${dc.server.imapsPort}`,
          '--ca', dc.server.caFile,
          '--password-env', 'TARGET_PW',
          ...a.extra,
        ],
        env,
      );
      assert.equal(restore.status, 0, restore.stderr);
      await assertSameAccount(dc.server, dc.alice, a.user, ['INBOX', ...NAMES]);
    });
  }
});
