import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smallMessages } from '../fixtures/nasty.js';
import { runCliJson } from '../helpers/cli.js';
import { tcpProxy, type Proxy } from '../helpers/proxy.js';
import { connect, fetchAll, withDovecot, type Account } from '../helpers/server.js';

/**
 * An IMAP target without a usable UIDVALIDITY (issue 14): a proxy in front of Dovecot removes
 * `* OK [UIDVALIDITY n]` from every SELECT/EXAMINE and spoils APPENDUID's (`abc`). The target's
 * UIDs are then trusted within one run only (drivers/imap/uid-validity.ts): its folder is renumbered
 * between runs (every message moved out and back), and the rerun appends only the one new source
 * message, nothing twice; `--sync-deletions` removes nothing by such a UID.
 */
const kim: Account = { name: 'uidv-kim', password: 'uidv-kim-pw' };
const messages = smallMessages(6, 11);
const dc = withDovecot({ seed: [{ path: 'INBOX', messages }], users: [kim] });

/** Passes everything on, without the server's UIDVALIDITY. */
function noUidValidity(port: number): Promise<Proxy> {
  return tcpProxy(port, (client: net.Socket, upstream: net.Socket) => {
    client.on('data', (d: Buffer) => upstream.write(d));
    let pending = '';
    upstream.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      const end = pending.lastIndexOf('\r\n');
      if (end < 0) return;
      const out = pending.slice(0, end + 2).replace(/\* OK \[UIDVALIDITY \d+\][^\r\n]*\r\n/g, '').replace(/\[APPENDUID \d+ /g, '[APPENDUID abc ');
      pending = pending.slice(end + 2);
      client.write(Buffer.from(out, 'latin1'));
    });
  });
}

const messageIds = (raws: readonly Buffer[]): string[] => raws.map((r) => /^Message-ID: *(\S+)/im.exec(r.toString('latin1'))?.[1] ?? '?').sort();

describe('migrate into a target without a usable UIDVALIDITY', { skip: dc.skip }, () => {
  let root = '';
  let proxy: Proxy | undefined;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-migrate-uidv-'));
  });
  after(async () => {
    await proxy?.close();
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('the target renumbered between runs: the rerun appends only the new message, nothing twice', { timeout: 120_000 }, async () => {
    proxy = await noUidValidity(dc.server.imapPort);
    const port = proxy.port;
    const run = (...extra: string[]): ReturnType<typeof runCliJson> =>
      runCliJson(
        [
          'migrate', '--json',
          '--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'PW',
          '--to', `imap://${kim.name}@127.0.0.1:${port}`, '--target-tls-mode', 'plain', '--target-password-env', 'TPW',
          ...extra,
        ],
        { PW: dc.alice.password, TPW: kim.password, XDG_STATE_HOME: join(root, 'state') },
      );
    const first = await run();
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /target folder \\?"INBOX\\?" has no usable UIDVALIDITY/);
    const source = async (): Promise<string[]> => messageIds((await fetchAll(dc.server, dc.alice, 'INBOX')).map((m) => m.raw));
    const target = async (): Promise<string[]> => messageIds((await fetchAll(dc.server, kim, 'INBOX')).map((m) => m.raw));
    assert.deepEqual(await target(), await source());

    // Renumber the target folder (out and back: new UIDs), and add a message to the source.
    const k = await connect(dc.server, kim);
    try {
      await k.mailboxCreate('Aside');
      await k.mailboxOpen('INBOX');
      await k.messageMove('1:*', 'Aside');
      await k.mailboxOpen('Aside');
      await k.messageMove('1:*', 'INBOX');
    } finally {
      await k.logout();
    }
    const a = await connect(dc.server, dc.alice);
    try {
      await a.append('INBOX', Buffer.from('Subject: new\r\nMessage-ID: <new@mailferry.test>\r\n\r\nnew\r\n'));
    } finally {
      await a.logout();
    }

    const second = await run();
    assert.equal(second.status, 0, second.stderr);
    assert.equal(second.out['messages'], 1, second.stderr);
    assert.deepEqual(await target(), await source());
    assert.equal((await target()).length, messages.length + 1);

    const third = await run();
    assert.equal(third.status, 0, third.stderr);
    assert.equal(third.out['messages'], 0, third.stderr);
    assert.deepEqual(await target(), await source());

    // --sync-deletions: no record of an earlier run is trusted (the folder is re-matched), so
    // nothing is removed by a UID that may name another message by now.
    const b = await connect(dc.server, dc.alice);
    try {
      await b.mailboxOpen('INBOX');
      await b.messageDelete('1');
    } finally {
      await b.logout();
    }
    const fourth = await run('--sync-deletions');
    assert.equal(fourth.status, 0, fourth.stderr);
    assert.equal(fourth.out['messages'], 0, fourth.stderr);
    assert.equal((await target()).length, messages.length + 1);
  });
});
