import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smallMessages } from '../fixtures/nasty.js';
import { runCliJson } from '../helpers/cli.js';
import { tcpProxy, type Proxy } from '../helpers/proxy.js';
import { fetchAll, withDovecot, type Account } from '../helpers/server.js';

/**
 * A target that refuses `UID SEARCH ALL` (a tagged NO, as an overloaded server may answer) is not
 * an empty folder: read as one, the target folder's record would be thrown away and every message
 * appended again. The folder is reported (exit 3) and nothing is appended twice.
 */
const jay: Account = { name: 'search-jay', password: 'search-jay-pw' };
const messages = smallMessages(12, 7);
const dc = withDovecot({ seed: [{ path: 'INBOX', messages }], users: [jay] });

/** Forwards everything, but answers the client's `UID SEARCH ALL` itself with a tagged NO. */
function refusingSearch(port: number): Promise<Proxy> {
  return tcpProxy(port, (client: net.Socket, upstream: net.Socket) => {
    let pending = '';
    client.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      let nl: number;
      let out = '';
      while ((nl = pending.indexOf('\r\n')) >= 0) {
        const line = pending.slice(0, nl + 2);
        pending = pending.slice(nl + 2);
        const m = /^(\S+) UID SEARCH ALL\r\n$/i.exec(line);
        if (m !== null) client.write(`${m[1]} NO [SERVERBUG] search refused\r\n`);
        else out += line;
      }
      // A literal's bytes (APPEND) may end without CRLF: pass them on as they come.
      if (pending !== '' && !/^\S+ UID SEARCH/i.test(pending)) {
        out += pending;
        pending = '';
      }
      if (out !== '') upstream.write(Buffer.from(out, 'latin1'));
    });
    upstream.on('data', (d: Buffer) => client.write(d));
  });
}

describe('migrate into a target that refuses SEARCH', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-search-refused-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('the folder is reported (exit 3), nothing appended twice; a rerun without the fault appends nothing', { timeout: 120_000 }, async () => {
    const run = (port: number): ReturnType<typeof runCliJson> =>
      runCliJson(
        [
          'migrate', '--json',
          '--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'PW',
          '--to', `imap://${jay.name}@127.0.0.1:${port}`, '--target-tls-mode', 'plain', '--target-password-env', 'TPW',
        ],
        { PW: dc.alice.password, TPW: jay.password, XDG_STATE_HOME: join(root, 'state') },
      );
    const first = await run(dc.server.imapPort);
    assert.equal(first.status, 0, first.stderr);
    assert.equal((await fetchAll(dc.server, jay, 'INBOX')).length, messages.length);

    const proxy = await refusingSearch(dc.server.imapPort);
    try {
      const refused = await run(proxy.port);
      assert.equal(refused.status, 3, refused.stderr);
      assert.match(refused.stderr, /INBOX.*refused UID SEARCH/);
    } finally {
      await proxy.close();
    }
    assert.equal((await fetchAll(dc.server, jay, 'INBOX')).length, messages.length, 'nothing appended twice');

    const again = await run(dc.server.imapPort);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], 0);
    assert.equal((await fetchAll(dc.server, jay, 'INBOX')).length, messages.length);
  });
});
