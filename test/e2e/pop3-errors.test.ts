import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findDoveadm } from '../../scripts/dev/dovecot.js';
import { randomBytes, smallMessages } from '../fixtures/nasty.js';
import { runCli } from '../helpers/cli.js';
import { withDovecot } from '../helpers/server.js';

/** POP3 failures at the command line: one line, the documented exit code, a rerun finishes. */
const exec = promisify(execFile);
const dave = { name: 'dave', password: 'dave-secret' };
const dc = withDovecot({ users: [dave] });
// Small ones, then 1 MB ones, so that the run lasts long enough for a kick to land mid-RETR.
const big = Array.from({ length: 60 }, (_, i) => ({
  raw: Buffer.from(`Subject: big ${i}\r\nMessage-ID: <big-${i}@mailferry.test>\r\n\r\n${randomBytes(750_000, i).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`),
}));
const messages = [...smallMessages(1000, 21), ...big];

function backup(dir: string, password: string) {
  return runCli(
    ['backup', '--from', `pop3s://dave@127.0.0.1:${dc.server.pop3sPort}`, '--ca', dc.server.caFile, '--password-env', 'PW', '--to', `maildir:${dir}`],
    { PW: password },
    { timeoutMs: 50_000 },
  );
}

async function countFiles(dir: string): Promise<number> {
  return (await readdir(join(dir, 'new'))).length + (await readdir(join(dir, 'cur'))).length;
}

describe('POP3 errors', { skip: dc.skip }, () => {
  test('wrong password: exit 4, one line, the password never shown', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mf-pop3-auth-'));
    try {
      const r = await backup(dir, 'not-the-password');
      assert.equal(r.status, 4, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^mailferry: /);
      assert.equal(r.stderr.includes('not-the-password'), false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a session kicked mid-run: exit 0, every message once', { timeout: 60_000 }, async () => {
    const doveadm = findDoveadm();
    assert.ok(doveadm !== undefined, 'doveadm comes with dovecot-core');
    const { seedMailbox } = await import('../../scripts/dev/seed.js');
    await seedMailbox(dc.server, dave, [{ path: 'INBOX', messages }]);
    const dir = await mkdtemp(join(tmpdir(), 'mf-pop3-kick-'));
    try {
      const running = backup(dir, dave.password);
      let done = false;
      void running.then(() => (done = true));
      let kicked = false;
      const deadline = Date.now() + 10_000;
      while (!done && !kicked && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 40));
        const out = await exec(doveadm, ['-c', dc.server.confFile, 'kick', dave.name]).catch(() => ({ stdout: '' }));
        kicked = out.stdout.includes(dave.name);
      }
      const r = await running;
      assert.equal(r.status, 0, r.stderr);
      assert.ok(kicked, `no session was kicked (the run took ${r.ms} ms)`);
      // A kick that lands between two commands is noticed only as a closed session, which the
      // next fetch replaces without a retry; one that lands mid-RETR is retried (the contract
      // suite cuts a RETR on purpose). Either way nothing may be missing or doubled:
      assert.equal(await countFiles(dir), messages.length);
      const again = await backup(dir, dave.password);
      assert.equal(again.status, 0, again.stderr);
      assert.equal(await countFiles(dir), messages.length, 'rerun adds nothing');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
