import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATE_FILE } from '../../src/commands/archive.js';
import { seedMailbox } from '../../scripts/dev/seed.js';
import { toLf } from '../../src/formats/fingerprint.js';
import { nastyMailbox, pop3View, smallMessages } from '../fixtures/nasty.js';
import { readMaildirFolder, readMboxFile } from '../helpers/archive.js';
import { lastJson, runCli } from '../helpers/cli.js';
import { fetchAll, withDovecot } from '../helpers/server.js';

/**
 * `backup --no-uidl` against Dovecot POP3. Dovecot has UIDL; the flag forces the fallback, where a
 * message is named by the hash of its header block (TOP n 0) and its size, exact duplicates by
 * their order.
 */
const twin = smallMessages(1, 77);
const inbox = [...(nastyMailbox().find((f) => f.path === 'INBOX')?.messages ?? []), ...twin, ...twin, ...twin];
const carol = { name: 'carol', password: 'carol-secret' };
const dc = withDovecot({ users: [carol] });

function args(root: string, extra: string[] = []): string[] {
  return ['backup', '--json', '--no-uidl', '--from', `pop3s://carol@127.0.0.1:${dc.server.pop3sPort}`, '--ca', dc.server.caFile,
    '--password-env', 'PW', '--to', `maildir:${join(root, 'md')}`, '--to', `mbox:${join(root, 'mbox')}`, ...extra];
}

interface Summary {
  messages: number;
  unchanged: number;
  deleted: number;
}

async function backup(root: string, extra: string[] = []): Promise<Summary> {
  const r = await runCli(args(root, extra), { PW: carol.password });
  assert.equal(r.status, 0, r.stderr);
  return lastJson(r.stdout) as unknown as Summary;
}

const idOf = (b: Buffer): string => /Message-ID: (<[^>]*>)/i.exec(b.toString('latin1'))?.[1] ?? '';

describe('backup from POP3 with --no-uidl', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-nouidl-'));
    await seedMailbox(dc.server, carol, [{ path: 'INBOX', messages: inbox }]);
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('byte-exact archive named by header keys, duplicates kept apart; a rerun copies nothing; one new message copies one', async () => {
    const first = await backup(root);
    assert.equal(first.messages, inbox.length);
    const md = await readMaildirFolder(join(root, 'md'));
    const mbox = await readMboxFile(join(root, 'mbox', 'INBOX'), join(root, 'mbox'), 'INBOX', `pop3s://carol@127.0.0.1:${dc.server.pop3sPort}`);
    for (const [name, got] of [['maildir', md], ['mbox', mbox]] as const) {
      assert.equal(got.length, inbox.length, `${name} count`);
      const bodies = got.map((g) => g.body);
      for (const m of inbox) {
        const want = toLf(pop3View(m.raw));
        const copies = inbox.filter((x) => x.raw.equals(m.raw)).length;
        assert.equal(bodies.filter((b) => b.equals(want)).length, copies, `${name}: ${idOf(m.raw)} byte-exact, ${copies} time(s)`);
      }
    }
    const uids = md.map((m) => m.uid ?? '');
    assert.ok(uids.every((u) => /^h:[0-9a-f]{32}:\d+(#\d+)?$/.test(u)), uids.join(' '));
    const twins = md.filter((m) => idOf(m.body) === idOf(twin[0]?.raw ?? Buffer.alloc(0))).map((m) => m.uid ?? '');
    const base = twins.find((u) => !u.includes('#')) ?? '';
    assert.deepEqual(twins.sort(), [base, `${base}#2`, `${base}#3`].sort(), 'three identical messages: key, key#2, key#3');
    const state = JSON.parse(await readFile(join(root, 'md', STATE_FILE), 'utf8')) as { folders: { INBOX: { uidValidity?: string } } };
    assert.equal(state.folders.INBOX.uidValidity, '1', 'header keys are a numbering of their own');

    const again = await backup(root);
    assert.deepEqual([again.messages, again.unchanged], [0, inbox.length], 'rerun: nothing copied');

    await seedMailbox(dc.server, carol, [{ path: 'INBOX', messages: smallMessages(1, 78) }]);
    const one = await backup(root);
    assert.deepEqual([one.messages, one.unchanged], [1, inbox.length]);
    assert.equal((await readMaildirFolder(join(root, 'md'))).length, inbox.length + 1);
  });

  test('--delete with --no-uidl deletes only what is archived', async () => {
    const late = smallMessages(2, 79);
    await seedMailbox(dc.server, carol, [{ path: 'INBOX', messages: late }]);
    // INBOX excluded: nothing is copied in this run, so the two new messages are in no archive.
    const r = await backup(root, ['--delete', '--exclude', 'INBOX']);
    assert.deepEqual([r.messages, r.deleted], [0, inbox.length + 1]);
    const left = await fetchAll(dc.server, carol, 'INBOX');
    assert.deepEqual(left.map((m) => idOf(m.raw)).sort(), late.map((m) => idOf(m.raw)).sort(), 'only the unarchived two are left');

    const rest = await backup(root, ['--delete']);
    assert.deepEqual([rest.messages, rest.deleted], [2, 2]);
    assert.equal((await fetchAll(dc.server, carol, 'INBOX')).length, 0);
    assert.equal((await readMaildirFolder(join(root, 'md'))).length, inbox.length + 3);
  });

  test('an archive made with UIDL is matched, not copied again, when --no-uidl is switched on, and back', async () => {
    const other = await mkdtemp(join(tmpdir(), 'mf-nouidl-switch-'));
    try {
      await seedMailbox(dc.server, carol, [{ path: 'INBOX', messages: inbox }]);
      const withUidl = args(other).filter((a) => a !== '--no-uidl');
      const r = await runCli(withUidl, { PW: carol.password });
      assert.equal(r.status, 0, r.stderr);
      assert.equal((lastJson(r.stdout) as unknown as Summary).messages, inbox.length);
      const switched = await backup(other);
      assert.deepEqual([switched.messages, switched.unchanged], [0, inbox.length], 'UIDL -> header keys');
      const back = await runCli(withUidl, { PW: carol.password });
      assert.equal(back.status, 0, back.stderr);
      assert.equal((lastJson(back.stdout) as unknown as Summary).messages, 0, 'header keys -> UIDL');
      for (const got of [await readMaildirFolder(join(other, 'md')), await readMboxFile(join(other, 'mbox', 'INBOX'), join(other, 'mbox'), 'INBOX', `pop3s://carol@127.0.0.1:${dc.server.pop3sPort}`)]) {
        assert.equal(got.length, inbox.length);
      }
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
