import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SeedMessage } from '../../scripts/dev/seed.js';
import type { JsonResult } from '../helpers/cli.js';
import { migrateJson } from '../helpers/migrate.js';
import { sysFlags } from '../helpers/compare.js';
import { connect, fetchAll, withDovecot, type Account } from '../helpers/server.js';

/** Flag changes on the source since the last run are carried to the target on a rerun (UID STORE), nothing appended. */
const seed: SeedMessage[] = [
  ['m1', ['\\Seen']],
  ['m2', ['\\Seen', '\\Answered', '\\Deleted']], // CLOSE after a read-write SELECT would expunge it
  ['m3', []],
  ['m4', ['\\Seen', '$Work']],
  ['m5', ['\\Seen']],
].map(([name, flags]) => ({
  raw: Buffer.from(`From: a@example.org\r\nSubject: ${name as string}\r\nMessage-ID: <${name as string}@flags.test>\r\n\r\nbody ${name as string}\r\n`),
  flags: flags as string[],
  date: new Date('2023-05-01T10:00:00Z'),
}));
const dave: Account = { name: 'flags-dave', password: 'flags-dave-pw' };
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: seed }, { path: 'Work', messages: seed.slice(0, 2) }], users: [dave] });

const subjectOf = (raw: Buffer): string => /^Subject: (.*)$/m.exec(raw.toString('latin1'))?.[1]?.trim() ?? '?';

async function flagsBySubject(user: Account, path: string): Promise<Map<string, Set<string>>> {
  return new Map((await fetchAll(dc.server, user, path)).map((m) => [subjectOf(m.raw), sysFlags(m.flags)]));
}

/** Change flags of the messages with these subjects in `path`. */
async function store(user: Account, path: string, changes: [string, '+' | '-', string[]][]): Promise<void> {
  const c = await connect(dc.server, user);
  try {
    await c.mailboxOpen(path);
    const uids = new Map<string, number>();
    for await (const m of c.fetch('1:*', { uid: true, envelope: true })) uids.set(m.envelope?.subject ?? '', m.uid);
    for (const [subject, op, flags] of changes) {
      const uid = String(uids.get(subject));
      if (op === '+') await c.messageFlagsAdd(uid, flags, { uid: true });
      else await c.messageFlagsRemove(uid, flags, { uid: true });
    }
  } finally {
    await c.logout();
  }
}

describe('migrate carries flag changes on a rerun', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-flags-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  const migrate = (): Promise<JsonResult> => migrateJson({ server: dc.server, user: dc.alice }, { server: dc.server, user: dave }, root);

  const assertFlagsEqual = async (path: string): Promise<void> =>
    assert.deepEqual(await flagsBySubject(dave, path), await flagsBySubject(dc.alice, path), `${path} flags`);

  test('add \\Flagged, remove \\Seen, add and remove keywords: the target follows, nothing appended; a flag set only on the target stays', async () => {
    const first = await migrate();
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.out['messages'], 7);
    await assertFlagsEqual('INBOX');

    await store(dc.alice, 'INBOX', [['m1', '+', ['\\Flagged']], ['m2', '-', ['\\Seen']], ['m3', '+', ['$Label1', 'Custom']], ['m4', '-', ['$Work']]]);
    await store(dc.alice, 'Work', [['m1', '+', ['\\Answered']]]);
    await store(dave, 'INBOX', [['m5', '+', ['\\Answered']]]);
    const again = await migrate();
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], 0);
    assert.equal(again.out['flagUpdates'], 5);
    const want = await flagsBySubject(dc.alice, 'INBOX');
    want.set('m5', new Set(['\\Seen', '\\Answered']));
    assert.deepEqual(await flagsBySubject(dave, 'INBOX'), want);
    await assertFlagsEqual('Work');
    assert.equal((await fetchAll(dc.server, dave, 'INBOX')).length, 5);

    const quiet = await migrate();
    assert.equal(quiet.out['flagUpdates'], 0);
  });

  test('state lost: the re-match finds the messages, flags are compared with the target and fixed, nothing appended', async () => {
    const dir = join(root, 'state', 'mailferry');
    for (const f of await readdir(dir)) await rm(join(dir, f));
    await store(dc.alice, 'INBOX', [['m1', '-', ['\\Flagged']], ['m3', '+', ['\\Seen']]]);
    const r = await migrate();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.out['messages'], 0);
    assert.equal(r.out['flagUpdates'], 3); // m1, m3, and m5 (its target-only \Answered: without a record the target follows the source)
    await assertFlagsEqual('INBOX');
    assert.equal((await fetchAll(dc.server, dave, 'INBOX')).length, 5);
  });
});
