/**
 * `mailferry oauth2 authorize` through bin/, against the test suite's authorization server on
 * loopback (test/helpers/oauth-server.ts: RFC 8628 device endpoint, RFC 7636/8252 code flow): the
 * device flow approved after a couple of polls with a slow_down honoured, denied, expired; the code
 * flow with the test as the browser, PKCE checked by the server; the stored refresh token (0600)
 * then logs a backup into Dovecot by OAuth2. No token or secret in any output.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { skipUnlessDovecot, startDovecot, type DovecotServer } from '../../scripts/dev/dovecot.js';
import { seedMailbox } from '../../scripts/dev/seed.js';
import { smallMessages } from '../fixtures/nasty.js';
import { readMaildirFolder } from '../helpers/archive.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startOAuthServer, type OAuthServer } from '../helpers/oauth-server.js';
import type { Account } from '../helpers/server.js';

const skip = skipUnlessDovecot();
const ada: Account = { name: 'ada', password: 'ada-not-used-Pw-9' };
const CLIENT = { id: 'mailferry-authorize-test', secret: 'client-S3cret-8812', refresh: 'rt-unused-0' };
const inbox = smallMessages(12, 21);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('mailferry oauth2 authorize', { skip }, () => {
  let oa: OAuthServer;
  let dc: DovecotServer;
  let root = '';
  let secretFile = '';
  const outputs: string[] = [];

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'mf-authorize-'));
    oa = await startOAuthServer({ user: ada.name, clientId: CLIENT.id, clientSecret: CLIENT.secret, refreshToken: CLIENT.refresh, lifetimeSeconds: 120 });
    dc = await startDovecot({ users: [{ ...ada }], oauth2: { introspectionUrl: oa.introspectionUrl } });
    await seedMailbox(dc, ada, [{ path: 'INBOX', messages: inbox }]);
    secretFile = path.join(root, 'client-secret');
    await writeFile(secretFile, `${CLIENT.secret}\n`, { mode: 0o600 });
  });

  after(async () => {
    const all = outputs.join('\n');
    for (const s of oa.secrets) assert.ok(!all.includes(s), `a secret (${s.slice(0, 6)}...) appeared in the output`);
    await Promise.all([dc?.stop(), oa?.close()]);
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  const show = (r: CliResult): string => `exit ${String(r.status)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  const device = (file: string): string[] => [
    'oauth2', 'authorize', '--device-url', oa.deviceUrl, '--token-url', oa.tokenUrl, '--client-id', CLIENT.id,
    '--client-secret-file', secretFile, '--scope', 'mail offline_access', '--refresh-token-file', file,
  ];
  /** Runs the CLI; `onStderr` sees stderr as it comes (the URL to open). */
  async function cli(args: string[], onStderr?: (text: string) => void, env: Record<string, string> = {}): Promise<CliResult> {
    let seen = '';
    const r = await runCli(args, { XDG_STATE_HOME: path.join(root, 'state'), ...env }, {
      timeoutMs: 60_000,
      onSpawn: (c) => c.stderr?.on('data', (d: Buffer) => onStderr?.((seen += d.toString('utf8')))),
    });
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  test('device flow: approved after two polls, slow_down honoured; the token file is 0600, the flags are printed', { timeout: 60_000 }, async () => {
    oa.slowDownAt = 2;
    oa.tooFast = 0;
    oa.devicePolls = 0;
    const file = path.join(root, 'rt-device');
    const running = cli(device(file));
    while (oa.devicePolls < 2) await sleep(50);
    oa.approveDevice();
    const r = await running;
    oa.slowDownAt = 0;
    assert.equal(r.status, 0, show(r));
    assert.equal(oa.tooFast, 0, 'a poll came sooner than the interval (slow_down not honoured)');
    assert.equal(oa.devicePolls, 3, 'polls: pending, slow_down, granted');
    assert.match(r.stderr, /open http:\/\/127\.0\.0\.1:\d+\/device-verify and enter the code [0-9A-F]{8}/);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await readFile(file, 'utf8')).trim(), oa.refreshToken);
    assert.ok(r.stdout.includes(`--oauth2-token-url ${oa.tokenUrl} --oauth2-client-id ${CLIENT.id} --oauth2-client-secret-file ${secretFile} --oauth2-refresh-token-file ${file}`), r.stdout);
  });

  test('device flow denied: exit 4, no file', async () => {
    const file = path.join(root, 'rt-denied');
    oa.devicePolls = 0; // the previous test's count, until this run's device request
    const running = cli(device(file));
    while (oa.devicePolls < 1) await sleep(50);
    oa.denyDevice();
    const r = await running;
    assert.equal(r.status, 4, show(r));
    assert.match(r.stderr, /denied/);
    await assert.rejects(stat(file), { code: 'ENOENT' });
  });

  test('device flow expired: exit 4', { timeout: 30_000 }, async () => {
    oa.deviceLifetime = 2;
    const r = await cli(device(path.join(root, 'rt-expired')));
    oa.deviceLifetime = 600;
    assert.equal(r.status, 4, show(r));
    assert.match(r.stderr, /expired/);
  });

  /** Plays the browser: opens the printed URL, follows its redirect to mailferry's loopback listener. */
  async function browse(text: string, done: { url?: string; status?: number }): Promise<void> {
    const m = /^(http:\/\/127\.0\.0\.1:\d+\/authorize\?\S+)$/m.exec(text);
    if (m === null || done.url !== undefined) return;
    done.url = m[1] ?? '';
    const res = await fetch(done.url, { redirect: 'manual' });
    const location = res.headers.get('location');
    assert.ok(location !== null && location.startsWith('http://127.0.0.1:'), `authorize answered ${res.status}`);
    done.status = (await fetch(location)).status;
  }

  test('code flow with PKCE and a loopback redirect, then a backup with the stored refresh token logs in by OAuth2', { timeout: 60_000 }, async () => {
    const file = path.join(root, 'rt-code');
    const seen: { url?: string; status?: number } = {};
    let browsing: Promise<void> | undefined;
    const r = await cli(
      ['oauth2', 'authorize', '--auth-url', oa.authorizeUrl, '--token-url', oa.tokenUrl, '--client-id', CLIENT.id, '--client-secret-env', 'CS', '--scope', 'mail', '--user', 'ada@example.org', '--refresh-token-file', file],
      (text) => void (browsing ??= seen.url === undefined && text.includes('/authorize?') ? browse(text, seen) : undefined),
      { CS: CLIENT.secret },
    );
    await browsing;
    assert.equal(r.status, 0, show(r));
    assert.equal(seen.status, 200, 'the loopback listener answered the redirect');
    assert.equal(oa.pkceFailures, 0);
    assert.equal(oa.lastAuthorize?.get('code_challenge_method'), 'S256');
    assert.equal(oa.lastAuthorize?.get('login_hint'), 'ada@example.org');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const flags = /--oauth2-token-url .*$/m.exec(r.stdout)?.[0].split(' ');
    assert.ok(flags !== undefined, r.stdout);
    assert.deepEqual(flags, ['--oauth2-token-url', oa.tokenUrl, '--oauth2-client-id', CLIENT.id, '--oauth2-client-secret-env', 'CS', '--oauth2-refresh-token-file', file]);

    // The printed flags, as printed, log a backup in (Dovecot checks the token by introspection).
    const dir = path.join(root, 'archive');
    const refreshes = oa.refreshes;
    const b = await cli(['backup', '--from', `imaps://ada@127.0.0.1:${dc.imapsPort}`, '--ca', dc.caFile, ...flags, '--to', `maildir:${dir}`], undefined, { CS: CLIENT.secret });
    assert.equal(b.status, 0, show(b));
    assert.equal(oa.refreshes - refreshes, 1, 'one refresh with the stored token');
    assert.equal((await readMaildirFolder(dir)).length, inbox.length);
  });

  test('the server checks the PKCE verifier: a code exchanged with another verifier is invalid_grant', async () => {
    const challenge = 'x'.repeat(43);
    const res = await fetch(`${oa.authorizeUrl}?${new URLSearchParams({ response_type: 'code', client_id: CLIENT.id, redirect_uri: 'http://127.0.0.1:9/', state: 's', code_challenge: challenge, code_challenge_method: 'S256' })}`, { redirect: 'manual' });
    const code = new URL(res.headers.get('location') ?? '').searchParams.get('code') ?? '';
    const before = oa.pkceFailures;
    const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:9/', client_id: CLIENT.id, client_secret: CLIENT.secret, code_verifier: 'y'.repeat(43) });
    const t = await fetch(oa.tokenUrl, { method: 'POST', body: form });
    assert.equal(t.status, 400);
    assert.equal(((await t.json()) as { error?: string }).error, 'invalid_grant');
    assert.equal(oa.pkceFailures - before, 1);
  });

  test('code flow denied in the browser: exit 4', async () => {
    oa.denyAuthorize = true;
    const seen: { url?: string; status?: number } = {};
    let browsing: Promise<void> | undefined;
    const r = await cli(
      ['oauth2', 'authorize', '--auth-url', oa.authorizeUrl, '--token-url', oa.tokenUrl, '--client-id', CLIENT.id, '--client-secret-file', secretFile, '--scope', 'mail', '--refresh-token-file', path.join(root, 'rt-no')],
      (text) => void (browsing ??= text.includes('/authorize?') ? browse(text, seen) : undefined),
    );
    await browsing;
    oa.denyAuthorize = false;
    assert.equal(r.status, 4, show(r));
    assert.match(r.stderr, /denied/);
  });

  test('usage errors (exit 2) all at once; a link at the token file is refused before the flow (exit 6)', async () => {
    const u = await cli(['oauth2', 'authorize', '--token-url', oa.tokenUrl, '--flow', 'device']);
    assert.equal(u.status, 2, show(u));
    for (const want of ['--device-url', '--client-id', '--scope', '--refresh-token-file']) assert.ok(u.stderr.includes(want), `${want} not named: ${u.stderr}`);
    const link = path.join(root, 'rt-link');
    await symlink(path.join(root, 'elsewhere'), link);
    const polls = oa.devicePolls;
    const l = await cli(device(link));
    assert.equal(l.status, 6, show(l));
    assert.equal(oa.devicePolls, polls, 'no poll before the file was checked');
    await assert.rejects(stat(path.join(root, 'elsewhere')), { code: 'ENOENT' });
  });
});
