import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATE_FILE } from '../../src/commands/archive.js';
import { seedMailbox } from '../../scripts/dev/seed.js';
import { smallMessages } from '../fixtures/nasty.js';
import { readMaildirFolder } from '../helpers/archive.js';
import { lastJson, runCli } from '../helpers/cli.js';
import { fetchAll, withDovecot } from '../helpers/server.js';

/**
 * `backup --delete-older-than DAYS` against Dovecot POP3: mail stays on the server until it has
 * been archived, in every archive, for more than DAYS days. The age is the archive's own record
 * (`firstSeen` in the state file), which the tests move back in time by rewriting the JSON.
 */
const dave = { name: 'dave', password: 'dave-secret' };
const dc = withDovecot({ users: [dave] });
const DAY = 86_400;

function args(root: string, extra: string[] = []): string[] {
  return ['backup', '--json', '--from', `pop3s://dave@127.0.0.1:${dc.server.pop3sPort}`, '--ca', dc.server.caFile, '--password-env', 'PW',
    '--to', `maildir:${join(root, 'md')}`, '--to', `mbox:${join(root, 'mbox')}`, ...extra];
}

interface Summary {
  messages: number;
  deleted: number;
}

async function backup(root: string, extra: string[]): Promise<Summary> {
  const r = await runCli(args(root, extra), { PW: dave.password });
  assert.equal(r.status, 0, r.stderr);
  return lastJson(r.stdout) as unknown as Summary;
}

const idOf = (b: Buffer): string => /Message-ID: (<[^>]*>)/i.exec(b.toString('latin1'))?.[1] ?? '';

async function onServer(): Promise<string[]> {
  return (await fetchAll(dc.server, dave, 'INBOX')).map((m) => idOf(m.raw)).sort();
}

interface StateJson {
  folders: Record<string, { firstSeen?: Record<string, number> }>;
}

/** Move the first-seen time of these UIDLs `days` days back, in the state of one archive. */
async function age(archive: string, uidls: readonly string[], days: number): Promise<void> {
  const path = join(archive, STATE_FILE);
  const state = JSON.parse(await readFile(path, 'utf8')) as StateJson;
  const seen = state.folders['INBOX']?.firstSeen ?? {};
  for (const u of uidls) {
    const t = seen[u];
    assert.ok(t !== undefined, `first-seen time recorded for ${u}`);
    seen[u] = t - days * DAY;
  }
  await writeFile(path, JSON.stringify(state));
}

describe('backup from POP3 with --delete-older-than', { skip: dc.skip }, () => {
  let root = '';
  const first = smallMessages(6, 91);
  /** Message-ID -> UIDL, read from the Maildir names. */
  const uidlOf = new Map<string, string>();
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-pop3-age-'));
    await seedMailbox(dc.server, dave, [{ path: 'INBOX', messages: first }]);
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('a large DAYS deletes nothing and keeps the archive', async () => {
    const r = await backup(root, ['--delete-older-than', '36500']);
    assert.deepEqual([r.messages, r.deleted], [6, 0]);
    assert.deepEqual(await onServer(), first.map((m) => idOf(m.raw)).sort());
    const md = await readMaildirFolder(join(root, 'md'));
    assert.equal(md.length, 6);
    for (const m of md) uidlOf.set(idOf(m.body), m.uid ?? '');
    const again = await backup(root, ['--delete-older-than', '0.5']);
    assert.deepEqual([again.messages, again.deleted], [0, 0], 'archived just now: younger than half a day');
  });

  test('after the first-seen times are moved 10 days back, --delete-older-than 5 deletes exactly those', async () => {
    const ids = first.map((m) => idOf(m.raw));
    const uidl = (i: number): string => uidlOf.get(ids[i] as string) ?? '';
    const old = [0, 1, 2, 3].map(uidl);
    await age(join(root, 'md'), old, 10);
    await age(join(root, 'mbox'), old.slice(0, 3), 10);
    // Message 3 is old in the Maildir archive only, and 4 and 5 nowhere: all three stay.
    await age(join(root, 'md'), [uidl(4)], 3);
    const late = smallMessages(1, 92);
    await seedMailbox(dc.server, dave, [{ path: 'INBOX', messages: late }]);

    const r = await backup(root, ['--delete-older-than', '5']);
    assert.deepEqual([r.messages, r.deleted], [1, 3]);
    assert.deepEqual(await onServer(), [ids[3], ids[4], ids[5], idOf(late[0]?.raw ?? Buffer.alloc(0))].sort());
    assert.equal((await readMaildirFolder(join(root, 'md'))).length, 7, 'the archive keeps everything');
  });

  test('--delete-older-than 0 behaves like --delete', async () => {
    const r = await backup(root, ['--delete-older-than', '0']);
    assert.deepEqual([r.messages, r.deleted], [0, 4]);
    assert.deepEqual(await onServer(), []);
    assert.equal((await readMaildirFolder(join(root, 'md'))).length, 7);
  });

  test('bad values and combinations are usage errors (exit 2) before any network I/O', async () => {
    const base = ['backup', '--password-env', 'PW', '--to', `maildir:${join(root, 'never')}`];
    // Port 1: nothing listens, so any attempt to connect would end in exit 5, not 2.
    const pop3 = ['--from', 'pop3s://dave@127.0.0.1:1'];
    const imap = ['--from', 'imaps://dave@127.0.0.1:1'];
    const cases: [string[], RegExp][] = [
      [[...pop3, '--delete-older-than', 'abc'], /--delete-older-than needs a number of days/],
      [[...pop3, '--delete-older-than', '-1'], /--delete-older-than needs a number of days/],
      [[...pop3, '--delete-older-than', '1e3'], /--delete-older-than needs a number of days/],
      [[...pop3, '--delete-older-than', ''], /--delete-older-than needs a number of days/],
      [[...pop3, '--delete-older-than'], /Not enough arguments following: delete-older-than/],
      [[...pop3, '--delete', '--delete-older-than', '3'], /give --delete or --delete-older-than, not both/],
      [[...imap, '--delete-older-than', '3'], /--delete-older-than is for POP3 sources only/],
      [[...imap, '--no-uidl'], /--no-uidl is for POP3 sources only/],
      [[...imap, '--delete', '--delete-older-than', 'x'], /--delete is for POP3 sources only; .*needs a number of days.*; .*POP3 sources only; give --delete or/],
    ];
    for (const [extra, want] of cases) {
      const r = await runCli([...base, ...extra], { PW: 'x' });
      assert.equal(r.status, 2, `${extra.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, want, extra.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    }
    await assert.rejects(stat(join(root, 'never')), { code: 'ENOENT' }, 'no archive was created');
  });
});
