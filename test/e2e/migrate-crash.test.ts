import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nastyMailbox, prng, smallMessages } from '../fixtures/nasty.js';
import { CLI_BIN } from '../helpers/cli.js';
import { assertSameAccount } from '../helpers/compare.js';
import { withDovecot, type Account } from '../helpers/server.js';

/**
 * kill -9 during APPEND, at random moments, then a rerun: the target ends with every message of
 * the source exactly once (what was appended but not yet checkpointed is found again by header
 * hash and size, not appended twice).
 */
const seed = [...nastyMailbox({ bigMessage: false }), { path: 'Bulk', messages: smallMessages(1500, 44) }];
const target: Account = { name: 'crash-target', password: 'crash-target-pw' };
const dc = withDovecot({ seed, users: [target] });

describe('migrate crash safety', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-migrate-crash-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  function start(): { done: Promise<number | null>; kill: () => void; stderr: () => string } {
    const s = dc.server;
    const child = spawn(
      process.execPath,
      [CLI_BIN, 'migrate', '--from', `imaps://alice@127.0.0.1:${s.imapsPort}`, '--ca', s.caFile, '--password-env', 'ALICE_PW',
        '--to', `imaps://${target.name}@127.0.0.1:${s.imapsPort}`, '--target-ca', s.caFile, '--target-password-env', 'TARGET_PW',
        '--batch-mb', '0.25'],
      { env: { ...process.env, ALICE_PW: dc.alice.password, TARGET_PW: target.password, XDG_STATE_HOME: join(root, 'state') }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    return { done: new Promise((res) => child.on('exit', (code) => res(code))), kill: () => child.kill('SIGKILL'), stderr: () => err };
  }

  test('kill -9 at random moments, then rerun: every message on the target exactly once', { timeout: 120_000 }, async () => {
    const next = prng(777);
    let killed = 0;
    for (let trial = 0; trial < 5; trial++) {
      const run = start();
      const winner = await Promise.race([run.done, new Promise<'t'>((r) => setTimeout(() => r('t'), 300 + (next() % 1200)))]);
      if (winner === 't') {
        run.kill();
        killed++;
      }
      await run.done;
    }
    assert.ok(killed >= 2, `at least two runs were killed mid-way (${killed})`);
    const final = start();
    assert.equal(await final.done, 0, final.stderr());
    await assertSameAccount(dc.server, dc.alice, target, seed.map((f) => f.path));
  });
});
