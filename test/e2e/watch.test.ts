/**
 * `backup --watch` against Dovecot: mail delivered while it watches (APPEND by a second client) is
 * archived within seconds, in INBOX and in a --watch-folders folder; a kick mid-IDLE and a Dovecot
 * restart are survived with every message archived once; SIGTERM between passes ends it with exit
 * 0 within seconds; a refused login after a kick ends it with exit 4.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findDoveadm } from '../../scripts/dev/dovecot.js';
import { smallMessages } from '../fixtures/nasty.js';
import { withDovecot, type Account } from '../helpers/server.js';
import { archivedIds, deliverTo, serverIds, startWatch, stopBetweenPasses, watchBackupArgs, type Watching } from '../helpers/watch.js';

const exec = promisify(execFile);
const kim: Account = { name: 'watch-kim', password: 'watch-kim-pw' };
const rex: Account = { name: 'watch-rex', password: 'watch-rex-pw' };
const hal: Account = { name: 'watch-hal', password: 'watch-hal-pw' };
const dan: Account = { name: 'watch-dan', password: 'watch-dan-pw' };
const dc = withDovecot({
  seed: [
    { path: 'INBOX', messages: smallMessages(3, 41) },
    { path: 'Work', messages: smallMessages(2, 42) },
  ],
  users: [kim, rex, hal, dan],
});

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mf-watch-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});
const deliver = (user: Account, folder = 'INBOX'): Promise<string> => deliverTo(dc.server, user, folder);

const watchArgs = (archive: string, user: Account, extra: string[] = []): Promise<string[]> => watchBackupArgs(dc.server, user, root, archive, extra);

/** The `message` events so far, as folder/uid. */
const messages = (w: Watching): string[] => w.events.filter((e) => e['type'] === 'message').map((e) => `${String(e['mailbox'])}/${String(e['id'])}`);

describe('backup --watch (IMAP IDLE)', { skip: dc.skip }, () => {
  test('new mail in INBOX and in a --watch-folders folder is archived within seconds; SIGTERM: exit 0 within seconds', { timeout: 90_000 }, async () => {
    const archive = join(root, 'basic');
    const w = startWatch(await watchArgs(archive, dc.alice, ['--watch-folders', 'Work', '--watch-heartbeat', '1s']));
    try {
      await w.until((e) => e['type'] === 'pass' && e['full'] === true);
      assert.equal(messages(w).length, 5, 'the first pass archived the 5 seeded messages');
      await w.until((e) => e['type'] === 'heartbeat' && e['live'] === 2, 10_000);
      for (const folder of ['INBOX', 'Work', 'INBOX']) {
        const from = w.events.length;
        const sent = Date.now();
        await deliver(dc.alice, folder);
        await w.until((e) => e['type'] === 'message' && e['mailbox'] === folder, 10_000, from);
        const took = Date.now() - sent;
        assert.ok(took < 5_000, `${folder}: archived ${took} ms after delivery`);
      }
      assert.deepEqual(await archivedIds(archive), await serverIds(dc.server, dc.alice, 'INBOX'));
      assert.deepEqual(await archivedIds(join(archive, '.Work')), await serverIds(dc.server, dc.alice, 'Work'));
    } finally {
      const end = await stopBetweenPasses(w);
      assert.equal(end.status, 0, w.stderr());
      assert.ok(end.at - end.sent < 5_000, `exited ${end.at - end.sent} ms after SIGTERM`);
      const summary = w.events.at(-1);
      assert.equal(summary?.['type'], 'summary');
      assert.equal(summary?.['messages'], 8);
      assert.equal(summary?.['exitCode'], 0);
    }
  });
});

/** doveadm kick: true when a session of `user` was there to kick. */
async function kick(user: Account): Promise<boolean> {
  const doveadm = findDoveadm();
  if (doveadm === undefined) throw new Error('doveadm not found');
  const { stdout } = await exec(doveadm, ['-c', dc.server.confFile, 'kick', user.name]).catch(() => ({ stdout: '' }));
  return stdout.includes(user.name);
}

describe('backup --watch survives what passes', { skip: dc.skip }, () => {
  test('kicks mid-IDLE and a Dovecot restart: every message delivered is archived within seconds, once', { timeout: 120_000 }, async () => {
    const archive = join(root, 'kicked');
    await deliver(kim);
    const w = startWatch(await watchArgs(archive, kim, ['--watch-heartbeat', '1s']));
    try {
      await w.until((e) => e['type'] === 'pass' && e['full'] === true);
      await w.until((e) => e['type'] === 'heartbeat' && e['live'] === 1, 10_000);
      for (let i = 0; i < 3; i++) {
        const from = w.events.length;
        assert.ok(await kick(kim), `kick ${i + 1}: a session of ${kim.name} was there`);
        // Delivered while the IDLE session is gone (or coming back): seen when it is back.
        const id = await deliver(kim);
        const sent = Date.now();
        await w.until((e) => e['type'] === 'message', 15_000, from);
        assert.ok(Date.now() - sent < 8_000, `kick ${i + 1}: ${id} archived ${Date.now() - sent} ms after delivery`);
        await w.until((e) => e['type'] === 'heartbeat' && e['live'] === 1, 15_000, w.events.length);
      }
      const from = w.events.length;
      await dc.server.restart();
      const id = await deliver(kim);
      const sent = Date.now();
      await w.until((e) => e['type'] === 'message', 30_000, from);
      assert.ok(Date.now() - sent < 15_000, `after the restart: ${id} archived ${Date.now() - sent} ms after delivery`);
      assert.deepEqual(await archivedIds(archive), await serverIds(dc.server, kim, 'INBOX'), 'every message once');
      assert.equal(messages(w).length, 5, 'one message event per message');
    } finally {
      assert.equal((await stopBetweenPasses(w)).status, 0, w.stderr());
    }
  });

  test('a login refused after a kick (the password changed) ends the watch with exit 4', { timeout: 60_000 }, async () => {
    const archive = join(root, 'refused');
    await deliver(rex);
    const w = startWatch(await watchArgs(archive, rex, ['--watch-heartbeat', '1s']));
    await w.until((e) => e['type'] === 'pass' && e['full'] === true);
    await w.until((e) => e['type'] === 'heartbeat' && e['live'] === 1, 10_000);
    await dc.server.addUser({ ...rex, password: 'changed-meanwhile' });
    await kick(rex);
    const end = await Promise.race([w.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 20_000))]);
    if (end === undefined) w.child.kill('SIGKILL');
    assert.equal(end?.status, 4, w.stderr());
    assert.match(w.stderr(), /login refused/);
    assert.equal(w.events.at(-1)?.['type'], 'error');
  });
});

describe('backup --watch as a service', { skip: dc.skip }, () => {
  test('an archive that cannot be written (a file size limit, as a full disk) ends the watch with exit 6', { timeout: 60_000 }, async () => {
    const archive = join(root, 'full');
    await deliverTo(dc.server, dan);
    const w = startWatch(await watchArgs(archive, dan), {}, ['bash', '-c', 'ulimit -f 100; exec "$0" "$@"']);
    await w.until((e) => e['type'] === 'pass' && e['full'] === true);
    const sent = Date.now();
    await deliverTo(dc.server, dan, 'INBOX', 300_000);
    const end = await Promise.race([w.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 20_000))]);
    if (end === undefined) w.child.kill('SIGKILL');
    assert.equal(end?.status, 6, w.stderr());
    assert.ok((end?.at ?? Infinity) - sent < 10_000, 'ended within seconds of the delivery');
    assert.match(w.stderr(), /cannot write/);
    assert.equal(w.events.at(-1)?.['type'], 'error');
    assert.equal((await archivedIds(archive)).length, 1, 'the first message stays, the large one is not half there');
  });

  test('SIGHUP opens the --log-file again (logrotate): later lines go to the new file', { timeout: 60_000 }, async () => {
    const archive = join(root, 'rotated');
    const log = join(root, 'watch.log');
    const w = startWatch(await watchArgs(archive, hal, ['--log-file', log, '--watch-heartbeat', '1s']));
    try {
      await w.until((e) => e['type'] === 'pass' && e['full'] === true);
      await rename(log, `${log}.1`);
      w.child.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 300));
      const from = w.events.length;
      const id = await deliverTo(dc.server, hal);
      await w.until((e) => e['type'] === 'message', 10_000, from);
      const fresh = await readFile(log, 'utf8');
      assert.match(fresh, /watch: INBOX \d+ copied to maildir:/, 'the copy is logged in the new file');
      assert.match(await readFile(`${log}.1`, 'utf8'), /mailferry backup started/, 'the old file keeps what came before');
      assert.equal(w.child.exitCode, null, `still running after SIGHUP (${id})`);
    } finally {
      assert.equal((await stopBetweenPasses(w)).status, 0, w.stderr());
    }
    assert.match(await readFile(log, 'utf8'), /mailferry backup exit 0/);
  });
});
