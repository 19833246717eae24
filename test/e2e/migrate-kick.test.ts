import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findDoveadm } from '../../scripts/dev/dovecot.js';
import { randomBytes, smallMessages } from '../fixtures/nasty.js';
import { fetchAll, withDovecot, type Account } from '../helpers/server.js';
import { migrateJson } from '../helpers/migrate.js';
import { runCliJson } from '../helpers/cli.js';
import { cutProxy } from '../helpers/cut-proxy.js';

/**
 * The target's sessions are kicked (doveadm kick) while migrate APPENDs: the dropped connections
 * are retried, and every message arrives exactly once (counted by Message-ID).
 */
const exec = promisify(execFile);
const big = Array.from({ length: 30 }, (_, i) => ({
  raw: Buffer.from(`Subject: big ${i}\r\nMessage-ID: <big-${i}@kick.test>\r\n\r\n${randomBytes(750_000, i).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`),
}));
const small = smallMessages(1500, 31);
const hank: Account = { name: 'kick-hank', password: 'kick-hank-pw' };
const ivy: Account = { name: 'kick-ivy', password: 'kick-ivy-pw' };
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: [...small.slice(0, 750), ...big] }, { path: 'Lists', messages: small.slice(750) }], users: [hank, ivy] });

const ids = (raws: Buffer[]): string[] => raws.map((r) => /^Message-ID: (.*)$/im.exec(r.toString('latin1'))?.[1]?.trim() ?? '?').sort();

describe('migrate while the target drops connections', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-migrate-kick-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('target sessions kicked mid-run: exit 0, every message exactly once; a rerun appends nothing', { timeout: 180_000 }, async () => {
    const doveadm = findDoveadm();
    assert.ok(doveadm !== undefined, 'doveadm comes with dovecot-core');
    const run = (): ReturnType<typeof migrateJson> =>
      migrateJson({ server: dc.server, user: dc.alice }, { server: dc.server, user: hank }, root, ['--batch-mb', '2']);
    const running = run();
    let done = false;
    void running.then(() => (done = true));
    let kicks = 0;
    const deadline = Date.now() + 60_000;
    while (!done && kicks < 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 150));
      const out = await exec(doveadm, ['-c', dc.server.confFile, 'kick', hank.name]).catch(() => ({ stdout: '' }));
      if (out.stdout.includes(hank.name)) kicks++;
    }
    const r = await running;
    assert.equal(r.status, 0, r.stderr);
    assert.ok(kicks > 0, 'no target session was kicked');
    for (const path of ['INBOX', 'Lists']) {
      assert.deepEqual(ids((await fetchAll(dc.server, hank, path)).map((m) => m.raw)), ids((await fetchAll(dc.server, dc.alice, path)).map((m) => m.raw)), path);
    }
    const again = await run();
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], 0);
  });

  test('an APPEND stored but its answer lost (connection cut before OK): the retry finds it, nothing twice', { timeout: 120_000 }, async () => {
    const s = dc.server;
    const proxy = await cutProxy(s.imapPort, 'OK [APPENDUID');
    try {
      const r = await runCliJson(
        [
          'migrate', '--json', '--include', 'Lists',
          '--from', `imaps://${dc.alice.name}@127.0.0.1:${s.imapsPort}`, '--ca', s.caFile, '--password-env', 'PW',
          '--to', `imap://${ivy.name}@127.0.0.1:${proxy.port}`, '--target-tls-mode', 'plain', '--target-password-env', 'TPW',
        ],
        { PW: dc.alice.password, TPW: ivy.password, XDG_STATE_HOME: join(root, 'state-cut') },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.equal(proxy.cuts, 1, 'the answer to one APPEND was cut off');
      assert.match(r.stderr, /an APPEND was cut off unanswered; \d+ target messages not yet accounted for/);
      assert.deepEqual(ids((await fetchAll(s, ivy, 'Lists')).map((m) => m.raw)), ids((await fetchAll(s, dc.alice, 'Lists')).map((m) => m.raw)));
    } finally {
      await proxy.close();
    }
  });
});
