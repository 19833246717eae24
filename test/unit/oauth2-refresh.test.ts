import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { refreshTokens, tokenCachePath, type OAuth2Spec } from '../../src/auth/oauth2.js';
import { MailferryError } from '../../src/domain/errors.js';
import type { RemoteEndpoint } from '../../src/endpoints/url.js';
import { redact } from '../../src/log/logger.js';
import { startOAuthServer, type OAuthServer } from '../helpers/oauth-server.js';

/** The refresh flow's provider against the loopback token endpoint: when it refreshes, and when not. */
const endpoint: RemoteEndpoint = { kind: 'imap', user: 'olivia', host: 'imap.example.org', port: 993, tls: 'tls' };
let oa: OAuthServer;
let dir = '';
let n = 0;

before(async () => {
  oa = await startOAuthServer({ user: 'olivia', clientId: 'cid', clientSecret: 'csecret-123', refreshToken: 'rt-unit-1', lifetimeSeconds: 60 });
  dir = await mkdtemp(path.join(tmpdir(), 'mf-oauth2-unit-'));
  process.env['MF_UNIT_RT'] = 'rt-unit-1';
  process.env['MF_UNIT_CS'] = 'csecret-123';
});
after(async () => {
  await oa.close();
  await rm(dir, { recursive: true, force: true });
});

/** A provider with its own cache directory (a fresh "machine") unless `cacheDir` is given. */
function spec(cacheDir = path.join(dir, `c${++n}`), tokenUrl = oa.tokenUrl): Extract<OAuth2Spec, { kind: 'refresh' }> {
  return { kind: 'refresh', tokenUrl, clientId: 'cid', clientSecret: { env: 'MF_UNIT_CS' }, refreshToken: { env: 'MF_UNIT_RT' }, cacheDir };
}

const tokenOf = async (p: ReturnType<typeof refreshTokens>): Promise<string> => {
  const c = await p.get();
  assert.equal(c.kind, 'oauth2');
  return c.kind === 'oauth2' ? c.accessToken : '';
};

test('concurrent logins share one refresh; the token is redacted from logs', async () => {
  const p = refreshTokens(spec(), endpoint);
  const r0 = oa.refreshes;
  const tokens = await Promise.all([tokenOf(p), tokenOf(p), tokenOf(p), tokenOf(p)]);
  assert.equal(oa.refreshes - r0, 1);
  assert.equal(new Set(tokens).size, 1);
  assert.equal(redact(`token ${tokens[0] ?? ''}`), 'token ***');
});

test('invalidate(the current token) refreshes; invalidate(an older one) does not', async () => {
  const p = refreshTokens(spec(), endpoint);
  const first = await tokenOf(p);
  const r0 = oa.refreshes;
  p.invalidate({ kind: 'oauth2', accessToken: first });
  const second = await tokenOf(p);
  assert.notEqual(second, first);
  assert.equal(oa.refreshes - r0, 1);
  p.invalidate({ kind: 'oauth2', accessToken: first });
  assert.equal(await tokenOf(p), second);
  assert.equal(oa.refreshes - r0, 1);
});

test('a token near its expiry is refreshed (margin: a tenth of its life)', async () => {
  oa.lifetimeSeconds = 1;
  try {
    const p = refreshTokens(spec(), endpoint);
    const first = await tokenOf(p);
    assert.equal(await tokenOf(p), first, 'still valid');
    await new Promise((r) => setTimeout(r, 950)); // past 0.9 s
    assert.notEqual(await tokenOf(p), first);
  } finally {
    oa.lifetimeSeconds = 60;
  }
});

test('the cache serves the next run (another provider, same directory); a damaged cache is only refreshed', async () => {
  const cacheDir = path.join(dir, 'shared');
  const first = await tokenOf(refreshTokens(spec(cacheDir), endpoint));
  const r0 = oa.refreshes;
  assert.equal(await tokenOf(refreshTokens(spec(cacheDir), endpoint)), first);
  assert.equal(oa.refreshes, r0);
  // Another account has another file.
  await tokenOf(refreshTokens(spec(cacheDir), { ...endpoint, user: 'other' }));
  assert.equal(oa.refreshes - r0, 1);
  await writeFile(tokenCachePath(cacheDir, oa.tokenUrl, 'cid', endpoint), '{not json');
  assert.notEqual(await tokenOf(refreshTokens(spec(cacheDir), endpoint)), first);
  assert.equal(oa.refreshes - r0, 2);
});

test('a token endpoint that fails with 5xx: a retryable network error (exit 5); no access_token: protocol', async () => {
  let answer: { status: number; body: string } = { status: 503, body: '{"error":"temporarily_unavailable"}' };
  const srv = http.createServer((_req, res) => {
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(answer.body);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  assert.ok(addr !== null && typeof addr !== 'string');
  const url = `http://127.0.0.1:${addr.port}/token`;
  try {
    await assert.rejects(refreshTokens(spec(undefined, url), endpoint).get(), (e: unknown) => {
      assert.ok(e instanceof MailferryError);
      assert.equal(e.exitCode, 5);
      assert.equal(e.retryable, true);
      assert.match(e.message, /the OAuth2 token endpoint 127\.0\.0\.1:\d+ failed \(temporarily_unavailable\)/);
      return true;
    });
    answer = { status: 200, body: '{"token_type":"Bearer"}' };
    await assert.rejects(refreshTokens(spec(undefined, url), endpoint).get(), /sent no access_token/);
  } finally {
    srv.closeAllConnections();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
});
