import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { toLf } from '../../src/formats/fingerprint.js';
import { maildirFolderDir, mboxFolderFile } from '../../src/drivers/archive-paths.js';
import { LOCK_FILE } from '../../src/state/files.js';
import { nastyMailbox, smallMessages, prng } from '../fixtures/nasty.js';
import { readMaildirFolder, readMboxFile } from '../helpers/archive.js';
import { fetchAll, withDovecot } from '../helpers/server.js';

/**
 * kill -9 at arbitrary moments, then a rerun: the archive ends identical to the source, with no
 * message missing and none twice, in Maildir and in mbox.
 */
const seed = [...nastyMailbox(), { path: 'Bulk', messages: smallMessages(3000, 5) }, { path: 'Bulk/More', messages: smallMessages(1500, 6) }];
const dc = withDovecot({ seed });
const paths = seed.map((f) => f.path);

function args(root: string): string[] {
  return [
    resolve('bin/mailferry.js'), 'backup',
    '--from', `imap://alice@127.0.0.1:${dc.server.imapPort}`, '--ca', dc.server.caFile,
    '--password-env', 'ALICE_PW', '--connections', '3', '--batch-mb', '0.25',
    '--to', `maildir:${join(root, 'md')}`, '--to', `mbox:${join(root, 'mbox')}`,
  ];
}

function start(root: string): { done: Promise<number | null>; kill: (signal?: NodeJS.Signals) => void } {
  const child = spawn(process.execPath, args(root), { env: { ...process.env, ALICE_PW: dc.alice.password }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  done.then((code) => {
    if (code !== null && code !== 0) process.stderr.write(`run exited ${code}: ${stderr}\n`);
  }).catch(() => undefined);
  return { done, kill: (signal = 'SIGKILL') => child.kill(signal) };
}

describe('crash safety', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-crash-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('SIGINT stops a run with exit 130 and a consistent archive', async () => {
    const run = start(root);
    // Once the archive lock exists the command runs, so the signal handlers are installed (a fixed
    // delay raced Node's start-up on a loaded machine).
    const lock = join(root, 'md', LOCK_FILE);
    for (let i = 0; i < 2000 && !existsSync(lock); i++) await new Promise((r) => setTimeout(r, 10));
    run.kill('SIGINT');
    assert.equal(await run.done, 130);
  });

  test('kill -9 at random moments, then rerun: exact archive', async () => {
    const next = prng(20261122);
    let killed = 0;
    for (let trial = 0; trial < 5; trial++) {
      const run = start(root);
      const delay = 150 + (next() % 900);
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), delay));
      const winner = await Promise.race([run.done, timer]);
      if (winner === 'timeout') {
        run.kill();
        killed++;
      }
      await run.done;
    }
    assert.ok(killed >= 2, `at least two runs were killed mid-way (${killed})`);
    const final = start(root);
    assert.equal(await final.done, 0);
    const source = `imap://alice@127.0.0.1:${dc.server.imapPort}`;
    for (const path of paths) {
      const server = await fetchAll(dc.server, dc.alice, path);
      const mailbox = { path, delimiter: '/' };
      const md = await readMaildirFolder(maildirFolderDir(join(root, 'md'), 'maildir++', mailbox));
      assert.equal(md.length, server.length, `maildir ${path}: count`);
      assert.deepEqual(md.map((m) => Number(m.uid)).sort((a, b) => a - b), server.map((m) => m.uid), `maildir ${path}: each UID once`);
      for (const m of server) assert.ok(md.find((a) => a.uid === String(m.uid))?.body.equals(toLf(m.raw)), `maildir ${path} ${m.uid} bytes`);
      const mboxRoot = join(root, 'mbox');
      const mb = await readMboxFile(mboxFolderFile(mboxRoot, mailbox), mboxRoot, path, source);
      assert.equal(mb.length, server.length, `mbox ${path}: count`);
      const want = server.map((m) => toLf(m.raw).toString('latin1')).sort();
      const got = mb.map((m) => m.body.toString('latin1')).sort();
      assert.ok(want.every((w, i) => w === got[i]), `mbox ${path}: same messages once each`);
    }
  });
});
