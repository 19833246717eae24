/**
 * `backup --watch` with OAuth2 access tokens that live 2 s (Dovecot's oauth2 passdb asks the
 * test's introspection endpoint, test/helpers/oauth-server.ts): the token the watch started with
 * has long expired when the IDLE session is kicked and mail comes, and both the new IDLE session
 * and the pass log in with fresh tokens from the refresh flow; every message archived once.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { findDoveadm, skipUnlessDovecot, startDovecot, type DovecotServer } from '../../scripts/dev/dovecot.js';
import { startOAuthServer, type OAuthServer } from '../helpers/oauth-server.js';
import type { Account } from '../helpers/server.js';
import { archivedIds, deliverTo, serverIds, startWatch, stopBetweenPasses } from '../helpers/watch.js';

const exec = promisify(execFile);
const skip = skipUnlessDovecot();
const owen: Account = { name: 'owen', password: 'owen-pw-for-the-test-client-only' };
const CLIENT = { id: 'mailferry-watch-client', secret: 'watch-client-S3cret', refresh: 'rt-watch-1f2e' };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('backup --watch with expiring OAuth2 tokens', { skip }, () => {
  let oa: OAuthServer;
  let dc: DovecotServer;
  let root = '';
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'mf-watch-oauth2-'));
    oa = await startOAuthServer({ user: owen.name, clientId: CLIENT.id, clientSecret: CLIENT.secret, refreshToken: CLIENT.refresh, lifetimeSeconds: 2 });
    dc = await startDovecot({ users: [{ ...owen }], oauth2: { introspectionUrl: oa.introspectionUrl } });
  });
  after(async () => {
    await Promise.all([dc?.stop(), oa?.close()]);
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('a kick after the token expired, then mail: archived within seconds with fresh tokens; no token in the output', { timeout: 60_000 }, async () => {
    const secretFile = path.join(root, 'client-secret');
    await writeFile(secretFile, `${CLIENT.secret}\n`, { mode: 0o600 });
    await deliverTo(dc, owen);
    const archive = path.join(root, 'archive');
    const w = startWatch(
      [
        'backup', '--from', `imaps://${owen.name}@127.0.0.1:${dc.imapsPort}`, '--ca', dc.caFile,
        '--oauth2-token-url', oa.tokenUrl, '--oauth2-client-id', CLIENT.id, '--oauth2-client-secret-file', secretFile, '--oauth2-refresh-token-env', 'RT',
        '--to', `maildir:${archive}`, '--json', '--watch', '--watch-heartbeat', '1s',
      ],
      { RT: CLIENT.refresh },
    );
    try {
      await w.until((e) => e['type'] === 'pass' && e['full'] === true);
      await w.until((e) => e['type'] === 'heartbeat' && e['live'] === 1, 10_000);
      const refreshed = oa.refreshes;
      for (let i = 0; i < 2; i++) {
        await sleep(2_500); // the tokens in use have expired
        const doveadm = findDoveadm();
        if (doveadm === undefined) throw new Error('doveadm not found');
        await exec(doveadm, ['-c', dc.confFile, 'kick', owen.name]).catch(() => undefined);
        const from = w.events.length;
        await deliverTo(dc, owen);
        const sent = Date.now();
        await w.until((e) => e['type'] === 'message', 15_000, from);
        assert.ok(Date.now() - sent < 8_000, `round ${i + 1}: archived ${Date.now() - sent} ms after delivery`);
      }
      assert.ok(oa.refreshes > refreshed, `fresh tokens were fetched (${oa.refreshes - refreshed})`);
      assert.deepEqual(await archivedIds(archive), await serverIds(dc, owen, 'INBOX'));
    } finally {
      const end = await stopBetweenPasses(w);
      assert.equal(end.status, 0, w.stderr());
      const all = `${JSON.stringify(w.events)}\n${w.stderr()}`;
      for (const s of oa.secrets) assert.ok(!all.includes(s), `a secret (${s.slice(0, 6)}...) appeared in the output`);
    }
  });
});
