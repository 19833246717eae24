import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SeedMessage } from '../../scripts/dev/seed.js';
import { toLf } from '../../src/formats/fingerprint.js';
import { targetKey } from '../../src/drivers/imap/target.js';
import { maildirFolderDir } from '../../src/drivers/archive-paths.js';
import { decodeIds, type EncodedIds } from '../../src/state/ids.js';
import { decodeFlagSets, decodeUidRuns, type FlagSetsJson, type UidRunsJson } from '../../src/state/synced.js';
import { readMaildirFolder } from '../helpers/archive.js';
import { runCli, type JsonResult } from '../helpers/cli.js';
import { migrateJson } from '../helpers/migrate.js';
import { connect, fetchAll, withDovecot, type Account, type FetchedMessage } from '../helpers/server.js';

/** `--sync-deletions`: a rerun removes from the target what mailferry put there and the source deleted since; nothing else. */
const message = (name: string): SeedMessage => ({
  raw: Buffer.from(`From: a@example.org\r\nSubject: ${name}\r\nMessage-ID: <${name}@deletions.test>\r\n\r\nbody of ${name}\r\n`),
  flags: name === 'm3' ? ['\\Seen', '\\Deleted'] : ['\\Seen'], // a \Deleted message must survive the UID EXPUNGE
  date: new Date('2024-02-01T10:00:00Z'),
});
const trips = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'].map(message);
const notes = ['n1', 'n2', 'n3', 'n4'].map(message);
const erin: Account = { name: 'del-erin', password: 'del-erin-pw' };
const fay: Account = { name: 'del-fay', password: 'del-fay-pw' };
const dc = withDovecot({ seed: [{ path: 'Trips', messages: trips }, { path: 'Notes', messages: notes }], users: [erin, fay] });

const messageId = (raw: Buffer): string => /^Message-ID: <(.*)>$/im.exec(raw.toString('latin1'))?.[1] ?? '?';

/** Message-ID -> the message, of every message in a folder. */
async function byMessageId(user: Account, path: string): Promise<Map<string, FetchedMessage>> {
  return new Map((await fetchAll(dc.server, user, path)).map((m) => [messageId(m.raw), m]));
}

/** Expunge the messages with these subjects from `path` (UID STORE \Deleted + UID EXPUNGE). */
async function expunge(user: Account, path: string, subjects: string[]): Promise<void> {
  const c = await connect(dc.server, user);
  try {
    await c.mailboxOpen(path);
    const uids: number[] = [];
    for await (const m of c.fetch('1:*', { uid: true, envelope: true })) if (subjects.includes(m.envelope?.subject ?? '')) uids.push(m.uid);
    assert.equal(uids.length, subjects.length);
    assert.equal(await c.messageDelete(uids.join(','), { uid: true }), true);
  } finally {
    await c.logout();
  }
}

interface StateFolder extends EncodedIds {
  targetUids?: UidRunsJson;
  flags?: FlagSetsJson;
}

/** The state file as the next run reads it: per folder, its ids, target UIDs and flag records. */
async function readState(path: string): Promise<(folder: string) => { ids: Set<string>; targetUids: Map<string, number>; flags: Map<string, string> }> {
  const json = JSON.parse(await readFile(path, 'utf8')) as { folders: Record<string, StateFolder> };
  return (folder) => {
    const f = json.folders[folder];
    assert.ok(f !== undefined, `state has ${JSON.stringify(folder)}`);
    return {
      ids: decodeIds(f),
      targetUids: f.targetUids === undefined ? new Map() : decodeUidRuns(f.targetUids),
      flags: f.flags === undefined ? new Map() : decodeFlagSets(f.flags),
    };
  };
}

describe('--sync-deletions', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-deletions-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  // With a local archive in the same pass, which keeps everything.
  const migrate = (extra: string[] = []): Promise<JsonResult> =>
    migrateJson({ server: dc.server, user: dc.alice }, { server: dc.server, user: erin }, root, ['--include', 'Trips', '--archive', `maildir:${join(root, 'archive')}`, ...extra]);

  test('migrate: only with the flag, exactly the messages deleted on the source leave the target; a message added on the target stays', async () => {
    const first = await migrate();
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.out['messages'], 6);
    const statePath = first.out['state'] as string;
    const sourceUids = new Map([...(await byMessageId(dc.alice, 'Trips'))].map(([id, m]) => [id, String(m.uid)]));
    const targetUids = new Map([...(await byMessageId(erin, 'Trips'))].map(([id, m]) => [id, m.uid]));

    await expunge(dc.alice, 'Trips', ['m2', 'm5']);
    const c = await connect(dc.server, erin);
    try {
      await c.append('Trips', message('direct').raw, ['\\Flagged']);
    } finally {
      await c.logout();
    }

    const without = await migrate();
    assert.equal(without.status, 0, without.stderr);
    assert.equal(without.out['messages'], 0);
    assert.equal(without.out['removed'], 0);
    assert.deepEqual([...(await byMessageId(erin, 'Trips')).keys()].sort(), ['direct', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6'].map((n) => `${n}@deletions.test`).sort());

    const dry = await migrate(['--sync-deletions', '--dry-run']);
    assert.equal(dry.status, 0, dry.stderr);
    assert.deepEqual(dry.out['folders'], [{ mailbox: 'Trips', messages: 0, bytes: 0, target: 'Trips', create: false, remove: 2, present: 4 }]);
    assert.equal((await fetchAll(dc.server, erin, 'Trips')).length, 7, 'a dry run removes nothing');

    const beforeRemoval = join(root, 'state-before-removal.json');
    await copyFile(statePath, beforeRemoval);
    const synced = await migrate(['--sync-deletions']);
    assert.equal(synced.status, 0, synced.stderr);
    assert.equal(synced.out['removed'], 2);
    assert.equal(synced.out['messages'], 0);
    const source = await byMessageId(dc.alice, 'Trips');
    const target = await byMessageId(erin, 'Trips');
    assert.deepEqual([...target.keys()].sort(), ['direct', 'm1', 'm3', 'm4', 'm6'].map((n) => `${n}@deletions.test`).sort());
    for (const [id, m] of source) assert.ok(toLf(target.get(id)?.raw ?? Buffer.alloc(0)).equals(toLf(m.raw)), `${id} intact`);
    assert.ok(toLf(target.get('direct@deletions.test')?.raw ?? Buffer.alloc(0)).equals(toLf(message('direct').raw)), 'the message added on the target is intact');
    assert.ok(target.get('m3@deletions.test')?.flags.has('\\Deleted'), 'the \\Deleted message copied from the source is still there');

    // The state no longer mentions the removed messages, on either side.
    const gone = ['m2', 'm5'].map((n) => sourceUids.get(`${n}@deletions.test`) as string);
    const goneOnTarget = ['m2', 'm5'].map((n) => String(targetUids.get(`${n}@deletions.test`)));
    const state = await readState(statePath);
    const trip = state('Trips');
    assert.equal(trip.ids.size, 4);
    for (const id of gone) {
      assert.equal(trip.ids.has(id), false, `source id ${id} dropped`);
      assert.equal(trip.targetUids.has(id), false, `target UID of ${id} dropped`);
      assert.equal(trip.flags.has(id), false, `flags of ${id} dropped`);
    }
    const targetSide = state(targetKey('Trips')).ids;
    for (const uid of goneOnTarget) assert.equal(targetSide.has(uid), false, `target UID ${uid} dropped`);
    assert.equal(targetSide.size, 5);

    const archived = await readMaildirFolder(maildirFolderDir(join(root, 'archive'), 'maildir++', { path: 'Trips', delimiter: '/' }));
    assert.deepEqual(archived.map((m) => messageId(m.body)).sort(), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'].map((n) => `${n}@deletions.test`), 'the archive keeps everything');

    const third = await migrate(['--sync-deletions']);
    assert.equal(third.status, 0, third.stderr);
    assert.equal(third.out['removed'], 0);
    assert.equal(third.out['messages'], 0);

    // A crash between the EXPUNGE and the state's save: the next run finds the UIDs gone, removes nothing, cleans the state.
    await copyFile(beforeRemoval, statePath);
    const afterCrash = await migrate(['--sync-deletions']);
    assert.equal(afterCrash.status, 0, afterCrash.stderr);
    assert.equal(afterCrash.out['removed'], 0);
    assert.equal(afterCrash.out['messages'], 0);
    assert.equal((await fetchAll(dc.server, erin, 'Trips')).length, 5);
    const cleaned = (await readState(statePath))('Trips');
    for (const id of gone) assert.equal(cleaned.ids.has(id) || cleaned.targetUids.has(id), false, `${id} dropped after the crash`);
  });

  test('restore: a message file deleted from the Maildir archive leaves the target; the summary says so', async () => {
    const md = join(root, 'md');
    const env = { PW: dc.alice.password, TPW: fay.password, XDG_STATE_HOME: join(root, 'restore-state') };
    const backup = await runCli(
      ['backup', '--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'PW', '--include', 'Notes', '--to', `maildir:${md}`],
      env,
    );
    assert.equal(backup.status, 0, backup.stderr);
    const args = ['restore', '--from', `maildir:${md}`, '--to', `imaps://${fay.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'TPW'];
    const first = await runCli(args, env);
    assert.equal(first.status, 0, first.stderr);
    assert.equal((await fetchAll(dc.server, fay, 'Notes')).length, 4);

    const cur = join(maildirFolderDir(md, 'maildir++', { path: 'Notes', delimiter: '/' }), 'cur');
    let victim: string | undefined;
    for (const n of await readdir(cur)) if ((await readFile(join(cur, n), 'latin1')).includes('Subject: n2\n')) victim = n;
    assert.ok(victim !== undefined, 'n2 in the archive');
    const body = await readFile(join(cur, victim));
    await unlink(join(cur, victim));

    const synced = await runCli([...args, '--sync-deletions'], env);
    assert.equal(synced.status, 0, synced.stderr);
    assert.match(synced.stdout, /, 1 removed from the target \(deleted on the source\),/);
    const left = await fetchAll(dc.server, fay, 'Notes');
    assert.equal(left.length, 3);
    assert.equal(left.some((m) => toLf(m.raw).equals(toLf(body))), false, 'the deleted message is gone from the target');
  });

  test('with a message filter, or from an mbox archive, it is a usage error (exit 2, before any I/O), also from a --config file', async () => {
    const stateHome = join(root, 'usage-state');
    const env = { XDG_STATE_HOME: stateHome, TPW: 'x', PW: 'x' };
    const r = await runCli(
      ['migrate', '--from', 'imaps://a@127.0.0.1:1', '--password-env', 'PW', '--to', 'imaps://b@127.0.0.1:2', '--target-password-env', 'TPW', '--sync-deletions', '--since', '2024-01-01'],
      env,
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--sync-deletions cannot be combined with --since/);
    const job = join(root, 'job.json');
    await writeFile(job, JSON.stringify({ command: 'restore', from: `maildir:${root}`, to: 'imaps://b@127.0.0.1:2', passwordEnv: 'TPW', syncDeletions: true, unseenOnly: true, maxSize: '1M' }));
    const j = await runCli(['--config', job], env);
    assert.equal(j.status, 2, j.stderr);
    assert.match(j.stderr, /--sync-deletions cannot be combined with --max-size.*--sync-deletions cannot be combined with --unseen-only/);
    const mbox = await runCli(['restore', '--from', `mbox:${root}`, '--to', 'imaps://b@127.0.0.1:2', '--password-env', 'TPW', '--sync-deletions'], env);
    assert.equal(mbox.status, 2, mbox.stderr);
    assert.match(mbox.stderr, /--sync-deletions needs a Maildir archive/);
    await assert.rejects(stat(stateHome), 'nothing written');
  });
});
