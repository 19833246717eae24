/**
 * OAuth2 logins for real: Dovecot's oauth2 passdb checks every token against a small token and
 * introspection endpoint on loopback (test/helpers/oauth-server.ts) that this file runs. Tokens
 * live a few seconds, so they expire mid-run. Every run's stdout and stderr, and every state file,
 * is searched for every token, refresh token and the client secret at the end.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { findDoveadm, skipUnlessDovecot, startDovecot, type DovecotServer } from '../../scripts/dev/dovecot.js';
import { seedMailbox } from '../../scripts/dev/seed.js';
import { toLf } from '../../src/formats/fingerprint.js';
import { imapView, pop3View, smallMessages } from '../fixtures/nasty.js';
import { readMaildirFolder } from '../helpers/archive.js';
import { deadPort } from '../helpers/ports.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startOAuthServer, type OAuthServer } from '../helpers/oauth-server.js';
import { fetchAll, type Account } from '../helpers/server.js';

const exec = promisify(execFile);
const skip = skipUnlessDovecot();
const olivia: Account = { name: 'olivia', password: 'olivia-Pw-not-used-7' };
/** A password user, the source of the migrate test. */
const tom: Account = { name: 'tom', password: 'tom-Pa55-w0rd-3' };
const CLIENT = { id: 'mailferry-test-client', secret: 'client-S3cret-4711', refresh: 'rt-initial-0b5e22' };
const inbox = smallMessages(400, 7);
const work = smallMessages(60, 8);
const toms = smallMessages(25, 9);


const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('OAuth2 (XOAUTH2 / OAUTHBEARER) against Dovecot', { skip }, () => {
  let oa: OAuthServer;
  let dc: DovecotServer;
  /** A second Dovecot that offers XOAUTH2 only. */
  let dcX: DovecotServer;
  let root = '';
  let secretFile = '';
  const outputs: string[] = [];

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'mf-oauth2-'));
    oa = await startOAuthServer({ user: olivia.name, clientId: CLIENT.id, clientSecret: CLIENT.secret, refreshToken: CLIENT.refresh, lifetimeSeconds: 2 });
    const users = [{ ...olivia }];
    [dc, dcX] = await Promise.all([
      startDovecot({ users: [...users, { ...tom }], oauth2: { introspectionUrl: oa.introspectionUrl } }),
      startDovecot({ users, ssl: false, oauth2: { introspectionUrl: oa.introspectionUrl, mechanisms: ['xoauth2'] } }),
    ]);
    await seedMailbox(dc, olivia, [{ path: 'INBOX', messages: inbox }, { path: 'Work', messages: work }]);
    await seedMailbox(dc, tom, [{ path: 'INBOX', messages: toms }]);
    await seedMailbox(dcX, olivia, [{ path: 'INBOX', messages: inbox.slice(0, 20) }]);
    secretFile = path.join(root, 'client-secret');
    await writeFile(secretFile, `${CLIENT.secret}\n`, { mode: 0o600 });
  });

  after(async () => {
    // No secret anywhere in what any run printed.
    const all = outputs.join('\n');
    for (const s of oa.secrets) assert.ok(!all.includes(s), `a secret (${s.slice(0, 6)}...) appeared in the output`);
    await Promise.all([dc?.stop(), dcX?.stop(), oa?.close()]);
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  async function cli(args: string[], env: Record<string, string>, opts: Parameters<typeof runCli>[2] = {}): Promise<CliResult> {
    const r = await runCli(args, env, opts);
    outputs.push(r.stdout, r.stderr);
    return r;
  }
  const refreshFlags = (): string[] => [
    '--oauth2-token-url', oa.tokenUrl, '--oauth2-client-id', CLIENT.id, '--oauth2-client-secret-file', secretFile, '--oauth2-refresh-token-env', 'RT',
  ];
  const show = (r: CliResult): string => `exit ${String(r.status)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  const logins = (server: DovecotServer, method: string): number =>
    server.logTail(100_000).split('\n').filter((l) => l.includes(`Login: user=<olivia>, method=${method}`)).length;

  /** Every file under `dir` (state, archive) holds none of the secrets. */
  async function assertNoSecretIn(dir: string, only: (name: string) => boolean = () => true): Promise<void> {
    let files = 0;
    for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
      if (!e.isFile() || !only(e.name)) continue;
      files++;
      const text = (await readFile(path.join(e.parentPath, e.name))).toString('latin1');
      for (const s of oa.secrets) assert.ok(!text.includes(s), `${path.join(e.parentPath, e.name)} holds a secret`);
    }
    assert.ok(files > 0, `no file to check in ${dir}`);
  }

  async function assertArchived(dir: string, folder: string, want: Buffer[], view: (b: Buffer) => Buffer): Promise<void> {
    const got = await readMaildirFolder(folder === 'INBOX' ? dir : path.join(dir, `.${folder}`));
    assert.equal(got.length, want.length, `${folder}: message count`);
    for (const raw of want) assert.ok(got.some((g) => g.body.equals(toLf(view(raw)))), `${folder}: a message is missing or not byte-exact`);
  }

  test('IMAP backup with the refresh flow: the token expires mid-run, a reconnect refreshes it, byte-exact', { timeout: 90_000 }, async () => {
    const state = path.join(root, 'state-imap');
    const dir = path.join(root, 'imap');
    const before = oa.refreshes;
    const doveadm = findDoveadm();
    assert.ok(doveadm !== undefined, 'doveadm not found');
    const from = `imap://olivia@127.0.0.1:${dc.imapPort}`;
    let child: import('node:child_process').ChildProcess | undefined;
    const running = cli(['backup', '--debug', '--from', from, '--tls-mode', 'plain', ...refreshFlags(), '--to', `maildir:${dir}`, '--connections', '1', '--batch-mb', '0.05'], {
      RT: CLIENT.refresh,
      XDG_STATE_HOME: state,
    }, { timeoutMs: 80_000, onSpawn: (c) => (child = c) });
    let finished = false;
    void running.then(() => (finished = true));
    // Stop the run once it has archived something, let its token expire, cut its connection, resume.
    const files = async (): Promise<number> =>
      (await readdir(path.join(dir, 'new')).catch(() => [])).length + (await readdir(path.join(dir, 'cur')).catch(() => [])).length;
    while (!finished && (await files()) === 0) await sleep(5);
    if (finished || child?.pid === undefined) assert.fail(`the run ended before it could be paused: ${show(await running)}`);
    process.kill(child.pid, 'SIGSTOP');
    const paused = await files();
    await sleep(2_500); // > lifetime: the token it logged in with is dead now
    const { stdout } = await exec(doveadm, ['-c', dc.confFile, 'kick', olivia.name]);
    process.kill(child.pid, 'SIGCONT');
    const r = await running;
    assert.equal(r.status, 0, show(r));
    assert.ok(stdout.includes(olivia.name), `no session was kicked: ${stdout}`);
    assert.ok(paused < inbox.length + work.length, 'paused after the end');
    assert.ok(oa.refreshes - before >= 2, `expected a refresh after expiry, saw ${oa.refreshes - before} refresh(es)`);
    assert.ok(logins(dc, 'OAUTHBEARER') >= 2, 'expected two OAUTHBEARER logins (before and after the kick)');
    await assertArchived(dir, 'INBOX', inbox.map((m) => m.raw), imapView);
    await assertArchived(dir, 'Work', work.map((m) => m.raw), imapView);
    await assertNoSecretIn(dir);
  });

  test('the token cache: mode 0600 in a 0700 directory, reused by the next run (no refresh), no refresh token in it', async () => {
    oa.lifetimeSeconds = 120;
    const state = path.join(root, 'state-cache');
    const dir = path.join(root, 'cache');
    const args = ['backup', '--from', `imaps://olivia@127.0.0.1:${dc.imapsPort}`, '--ca', dc.caFile, ...refreshFlags(), '--to', `maildir:${dir}`];
    const env = { RT: CLIENT.refresh, XDG_STATE_HOME: state };
    const r0 = oa.refreshes;
    const first = await cli(args, env);
    assert.equal(first.status, 0, show(first));
    assert.equal(oa.refreshes - r0, 1, 'the first run refreshes once');
    const cacheDir = path.join(state, 'mailferry');
    const names = (await readdir(cacheDir)).filter((n) => n.startsWith('oauth2-'));
    assert.equal(names.length, 1, `one cache file: ${names.join(' ')}`);
    const cache = path.join(cacheDir, names[0] ?? '');
    assert.equal((await stat(cache)).mode & 0o777, 0o600, 'cache file mode');
    assert.equal((await stat(cacheDir)).mode & 0o777, 0o700, 'cache directory mode');
    const text = await readFile(cache, 'utf8');
    assert.ok(!text.includes(CLIENT.refresh) && !text.includes(CLIENT.secret), 'no refresh token or client secret in the cache');
    assert.ok(!names[0]?.includes('olivia'), 'no account in the file name');
    const second = await cli(args, env);
    assert.equal(second.status, 0, show(second));
    assert.equal(oa.refreshes - r0, 1, 'the second run reuses the cached token');
    await assertArchived(dir, 'INBOX', inbox.map((m) => m.raw), imapView);
    await assertNoSecretIn(dir);
    oa.lifetimeSeconds = 2;
  });

  test('POP3 with OAUTHBEARER (token command) and XOAUTH2 (refresh flow)', async () => {
    const dir = path.join(root, 'pop3');
    const mint = ['--oauth2-token-command', `node -e "fetch('${oa.mintUrl}').then((r)=>r.text()).then((t)=>process.stdout.write(t))"`];
    const m0 = oa.mints;
    const a = await cli(['backup', '--debug', '--from', `pop3s://olivia@127.0.0.1:${dc.pop3sPort}`, '--ca', dc.caFile, ...mint, '--to', `maildir:${dir}`], {});
    assert.equal(a.status, 0, show(a));
    assert.ok(oa.mints > m0, 'the token command ran');
    assert.ok(dc.logTail(100_000).includes('pop3-login: Info: Login: user=<olivia>, method=OAUTHBEARER'), 'POP3 login used OAUTHBEARER');
    await assertArchived(dir, 'INBOX', inbox.map((m) => m.raw), pop3View);

    const dirX = path.join(root, 'pop3-xoauth2');
    const b = await cli(['backup', '--from', `pop3://olivia@127.0.0.1:${dcX.pop3Port}`, '--tls-mode', 'plain', ...refreshFlags(), '--to', `maildir:${dirX}`], {
      RT: CLIENT.refresh,
      XDG_STATE_HOME: path.join(root, 'state-pop3'),
    });
    assert.equal(b.status, 0, show(b));
    assert.ok(dcX.logTail(100_000).includes('pop3-login: Info: Login: user=<olivia>, method=XOAUTH2'), 'POP3 login used XOAUTH2');
    await assertArchived(dirX, 'INBOX', inbox.slice(0, 20).map((m) => m.raw), pop3View);
  });

  test('IMAP XOAUTH2; a token the server refuses is replaced by re-running the token command', async () => {
    const dir = path.join(root, 'imap-xoauth2');
    oa.badMints = 1;
    // Dovecot delays the login after a refused one by a few seconds (auth penalty): outlive it.
    oa.lifetimeSeconds = 60;
    const m0 = oa.mints;
    const rejected = oa.rejected;
    const r = await cli(
      ['backup', '--from', `imap://olivia@127.0.0.1:${dcX.imapPort}`, '--tls-mode', 'plain', '--connections', '1', '--oauth2-token-command',
        `node -e "fetch('${oa.mintUrl}').then((r)=>r.text()).then((t)=>process.stdout.write(t))"`, '--to', `maildir:${dir}`],
      {},
    );
    assert.equal(r.status, 0, show(r));
    // One run up front (checked, then used for the first login: refused), one for the retry.
    assert.equal(oa.mints - m0, 2, 'the token command ran twice');
    assert.equal(oa.badMints, 0, 'the refused token was handed out');
    assert.ok(oa.rejected > rejected, 'Dovecot refused a token');
    oa.lifetimeSeconds = 2;
    assert.ok(logins(dcX, 'XOAUTH2') >= 1, 'IMAP login used XOAUTH2');
    await assertArchived(dir, 'INBOX', inbox.slice(0, 20).map((m) => m.raw), imapView);
  });

  test('a rotated refresh token is stored in the cache (0600) and used by the next run', async () => {
    oa.rotate = true;
    try {
      const state = path.join(root, 'state-rotate');
      const args = ['backup', '--from', `imaps://olivia@127.0.0.1:${dc.imapsPort}`, '--ca', dc.caFile, ...refreshFlags(), '--to', `maildir:${path.join(root, 'rotate')}`];
      const env = { RT: CLIENT.refresh, XDG_STATE_HOME: state };
      const r0 = oa.refreshes;
      const first = await cli(args, env);
      assert.equal(first.status, 0, show(first));
      assert.notEqual(oa.refreshToken, CLIENT.refresh, 'the server rotated the refresh token');
      const names = (await readdir(path.join(state, 'mailferry'))).filter((n) => n.startsWith('oauth2-'));
      const cache = path.join(state, 'mailferry', names[0] ?? '');
      assert.equal((await stat(cache)).mode & 0o777, 0o600, 'cache file mode');
      const text = await readFile(cache, 'utf8');
      assert.ok(text.includes(oa.refreshToken), 'the rotated refresh token is in the cache file');
      assert.ok(!text.includes(CLIENT.refresh), 'the configured one is not');
      await sleep(2_100); // the cached access token expires; the configured refresh token is dead
      const second = await cli(args, env);
      assert.equal(second.status, 0, show(second));
      assert.equal(oa.refreshes - r0, 2, 'the second run refreshed, with the rotated token');
    } finally {
      oa.rotate = false;
      oa.refreshToken = CLIENT.refresh;
    }
  });

  test('migrate into an OAuth2 target (--target-oauth2-*): every message byte-exact, no secret in the state file', async () => {
    oa.lifetimeSeconds = 60;
    const state = path.join(root, 'state-migrate');
    const r = await cli(
      ['migrate', '--from', `imaps://tom@127.0.0.1:${dc.imapsPort}`, '--ca', dc.caFile, '--password-env', 'PW', '--to', `imaps://olivia@127.0.0.1:${dc.imapsPort}`,
        '--target-ca', dc.caFile, '--target-oauth2-token-url', oa.tokenUrl, '--target-oauth2-client-id', CLIENT.id, '--target-oauth2-client-secret-env', 'CS',
        '--target-oauth2-refresh-token-env', 'RT', '--map', 'INBOX=FromTom'],
      { PW: tom.password, CS: CLIENT.secret, RT: CLIENT.refresh, XDG_STATE_HOME: state },
    );
    oa.lifetimeSeconds = 2;
    assert.equal(r.status, 0, show(r));
    assert.ok(logins(dc, 'OAUTHBEARER') >= 1);
    const got = await fetchAll(dc, olivia, 'FromTom');
    assert.equal(got.length, toms.length, 'message count in the target');
    for (const m of toms) assert.ok(got.some((g) => g.raw.equals(imapView(m.raw))), 'a message is missing or not byte-exact');
    await assertNoSecretIn(path.join(state, 'mailferry'), (f) => f.startsWith('target-'));
    assert.ok(!show(r).includes(tom.password));
  });

  test('a server without OAUTHBEARER/XOAUTH2 (IMAP and POP3): exit 4 saying so, no second token', async () => {
    const plain = await startDovecot({ users: [{ ...olivia }], ssl: false });
    try {
      for (const from of [`imap://olivia@127.0.0.1:${plain.imapPort}`, `pop3://olivia@127.0.0.1:${plain.pop3Port}`]) {
        const m0 = oa.mints;
        const r = await cli(
          ['backup', '--from', from, '--tls-mode', 'plain', '--oauth2-token-command', `node -e "fetch('${oa.mintUrl}').then((r)=>r.text()).then((t)=>process.stdout.write(t))"`,
            '--to', `maildir:${path.join(root, 'never')}`],
          {},
        );
        assert.equal(r.status, 4, show(r));
        assert.match(r.stderr, /^mailferry: 127\.0\.0\.1:\d+ offers no OAuth2 login \(it offers PLAIN LOGIN; mailferry needs OAUTHBEARER or XOAUTH2\); use a password instead\n$/);
        assert.equal(oa.mints - m0, 1, 'no retry with a fresh token');
      }
    } finally {
      await plain.stop();
    }
  });

  test('invalid_grant: exit 4, one line saying to re-authorize; token endpoint down: exit 5', async () => {
    const from = `imaps://olivia@127.0.0.1:${dc.imapsPort}`;
    const base = ['backup', '--from', from, '--ca', dc.caFile, '--to', `maildir:${path.join(root, 'never')}`];
    const bad = await cli([...base, ...refreshFlags()], { RT: 'rt-revoked-long-ago', XDG_STATE_HOME: path.join(root, 'state-bad') });
    assert.equal(bad.status, 4, show(bad));
    assert.match(bad.stderr, /^mailferry: the OAuth2 refresh token was refused by 127\.0\.0\.1:\d+ \(invalid_grant[^\n]*re-authorize[^\n]*\n$/);
    assert.ok(!bad.stderr.includes('rt-revoked-long-ago'));
    const down = await cli(
      [...base, '--oauth2-token-url', `http://127.0.0.1:${await deadPort()}/token`, '--oauth2-client-id', CLIENT.id, '--oauth2-refresh-token-env', 'RT'],
      { RT: CLIENT.refresh, XDG_STATE_HOME: path.join(root, 'state-down') },
    );
    assert.equal(down.status, 5, show(down));
    assert.match(down.stderr, /^mailferry: cannot reach the OAuth2 token endpoint 127\.0\.0\.1:\d+: ECONNREFUSED\n$/);
  });

  test('config: a password and OAuth2 together, an incomplete refresh flow, a plain-http token URL: all reported at once (exit 2)', async () => {
    const r = await cli(
      ['backup', '--from', `imaps://olivia@127.0.0.1:${dc.imapsPort}`, '--password-env', 'PW', '--oauth2-token-url', 'http://oauth.example.org/token',
        '--oauth2-refresh-token-env', 'RT', '--oauth2-refresh-token-file', secretFile, '--to', `maildir:${path.join(root, 'never')}`],
      {},
    );
    assert.equal(r.status, 2, show(r));
    for (const want of [/not both/, /--oauth2-token-url must be https/, /--oauth2-client-id ID is required/, /give only one of --oauth2-refresh-token-env, --oauth2-refresh-token-file/]) {
      assert.match(r.stderr, want);
    }
    await chmod(secretFile, 0o644);
    try {
      const loose = await cli(['backup', '--from', `imaps://olivia@127.0.0.1:${dc.imapsPort}`, '--ca', dc.caFile, ...refreshFlags(), '--to', `maildir:${path.join(root, 'never')}`], {
        RT: CLIENT.refresh,
        XDG_STATE_HOME: path.join(root, 'state-loose'),
      });
      assert.equal(loose.status, 2, show(loose));
      assert.match(loose.stderr, /OAuth2 client secret file .* is readable by others; run: chmod 600/);
    } finally {
      await chmod(secretFile, 0o600);
    }
  });
});
