/**
 * Round trips per folder (issue 21): over a link with latency every command waited on costs a
 * round trip, so the IMAP source asks for as few as it can. Dovecot on loopback behind the WAN
 * benchmark's proxy (scripts/bench/wan-proxy.ts, no delay here: it only counts each connection's
 * commands and turns). Per folder: one EXAMINE, one metadata `UID FETCH 1:*` and one body FETCH,
 * no `UID SEARCH ALL`, and no `LIST` before an EXAMINE on connections that did not list the
 * folders; a rerun with nothing new is one EXAMINE and one metadata FETCH per folder.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { startWanProxy, type ConnectionStats } from '../../scripts/bench/wan-proxy.js';
import { smallMessages } from '../fixtures/nasty.js';
import { runCli } from '../helpers/cli.js';
import { withDovecot } from '../helpers/server.js';

const FOLDERS = ['INBOX', 'Archive', 'Lists', 'Projects', 'Sent', 'Work'];
const dc = withDovecot({ seed: FOLDERS.map((p, i) => ({ path: p, messages: smallMessages(6, 200 + i) })) });

interface Counted {
  status: number | null;
  stderr: string;
  commands: Record<string, number>;
  turns: number;
  conns: ConnectionStats[];
}

async function backup(dir: string, extra: string[]): Promise<Counted> {
  const proxy = await startWanProxy({ targetPort: dc.server.imapPort, delayMs: 0 });
  try {
    const r = await runCli(
      ['backup', '--from', `imap://alice@127.0.0.1:${proxy.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `maildir:${path.join(dir, 'mail')}`, ...extra],
      { PW: dc.alice.password, XDG_STATE_HOME: path.join(dir, 'state') },
      { timeoutMs: 90_000 },
    );
    const conns = proxy.connections.filter((c) => c.bytesUp > 0);
    const commands: Record<string, number> = {};
    for (const c of conns) for (const [k, v] of Object.entries(c.commands)) commands[k] = (commands[k] ?? 0) + v;
    return { status: r.status, stderr: r.stderr, commands, turns: conns.reduce((n, c) => n + c.turns, 0), conns };
  } finally {
    await proxy.close();
  }
}

const show = (r: Counted): string => `${JSON.stringify(r.commands)}\n${r.conns.map((c) => c.turnLog.join(' | ')).join('\n')}\n${r.stderr}`;

describe('IMAP round trips per folder', { skip: dc.skip }, () => {
  test('one connection: EXAMINE, one metadata FETCH, one body FETCH per folder; no SEARCH; a rerun: EXAMINE and the metadata FETCH', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mf-turns-'));
    try {
      const r = await backup(dir, ['--connections', '1']);
      assert.equal(r.status, 0, show(r));
      assert.equal(r.commands['UID SEARCH'] ?? 0, 0, show(r));
      assert.equal(r.commands['EXAMINE'], FOLDERS.length, show(r));
      assert.equal(r.commands['UID FETCH meta'], FOLDERS.length, show(r));
      assert.equal(r.commands['UID FETCH body'], FOLDERS.length, show(r));
      assert.equal(r.commands['LIST'], 1, show(r));
      const again = await backup(dir, ['--connections', '1']);
      assert.equal(again.status, 0, show(again));
      assert.equal(again.commands['UID SEARCH'] ?? 0, 0, show(again));
      assert.equal(again.commands['EXAMINE'], FOLDERS.length, show(again));
      assert.equal(again.commands['UID FETCH meta'], FOLDERS.length, show(again));
      assert.equal(again.commands['UID FETCH body'] ?? 0, 0, show(again));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('four connections: one LIST in all (none before an EXAMINE), at most one EXAMINE per folder and connection, no SEARCH', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mf-turns-'));
    try {
      const r = await backup(dir, ['--connections', '4']);
      assert.equal(r.status, 0, show(r));
      assert.equal(r.commands['LIST'], 1, show(r));
      assert.equal(r.commands['UID SEARCH'] ?? 0, 0, show(r));
      assert.equal(r.commands['UID FETCH meta'], FOLDERS.length, show(r));
      // A folder's plan and its batch prefer the connection that has it open (pool.ts acquire).
      assert.ok((r.commands['EXAMINE'] ?? 0) <= FOLDERS.length + 4, show(r));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
