/**
 * A small OAuth2 authorization server on 127.0.0.1 for tests (node:http), enough for mailferry and
 * Dovecot's oauth2 passdb:
 *
 * - `POST /token` (RFC 6749 §6, form-encoded): grant_type=refresh_token with a known client id,
 *   client secret and refresh token issues a fresh access token that lives `lifetimeSeconds`;
 *   an unknown refresh token is `400 {"error":"invalid_grant"}`. With `rotate`, each reply carries a
 *   new refresh token and the old one stops working.
 * - `POST /introspect` (RFC 7662 style, what Dovecot's `introspection_mode = post` sends):
 *   `{"active":true,"username":USER}` for a live token, `{"active":false}` otherwise.
 * - `GET /mint` mints a token without a grant, as a token command would print it (`mints` counts
 *   them); while `badMints` is above 0 it hands out that many tokens the server will refuse.
 * - `issue()` mints a token directly; `refreshes` counts /token grants; `lifetimeSeconds` may be
 *   changed between runs.
 * - `POST /device` (RFC 8628 §3.1-3.2): device_code, user_code, verification_uri, expires_in
 *   (`deviceLifetime`), interval (`deviceInterval`). `/token` with
 *   grant_type=urn:ietf:params:oauth:grant-type:device_code answers `authorization_pending` until
 *   `approveDevice()` or `denyDevice()` (then `access_denied`), `expired_token` after expires_in,
 *   and `slow_down` to a poll sooner than the interval after the previous one (§3.5: the interval
 *   then grows by 5 s for every later poll; `tooFast` counts them), and once at poll `slowDownAt`
 *   (1-based; 0: never). `devicePolls` counts the polls of the latest device code.
 * - `GET /authorize` (RFC 6749 §4.1, RFC 7636 S256 only, RFC 8252 loopback redirect URI only):
 *   answers 302 to redirect_uri with code and state (or error=access_denied when `denyAuthorize`);
 *   `/token` with grant_type=authorization_code checks code, client, redirect_uri and that
 *   BASE64URL(SHA256(code_verifier)) is the challenge (`pkceFailures` counts the misses: invalid_grant).
 *   `lastAuthorize` holds the last request's query. Codes are single use and live 60 s.
 * Both grants issue an access token and a new refresh token, which becomes `refreshToken`.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';

export interface OAuthServerOptions {
  user: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  lifetimeSeconds: number;
  rotate?: boolean;
}

/** Counters and knobs are plain fields: the server updates the counters, a test may set the knobs. */
export interface OAuthServer {
  tokenUrl: string;
  introspectionUrl: string;
  mintUrl: string;
  /** Successful refresh_token grants so far. */
  refreshes: number;
  /** Tokens handed out by /mint. */
  mints: number;
  /** Introspections that found a live token / an expired or unknown one. */
  accepted: number;
  rejected: number;
  /** Every access and refresh token and the client secret (to grep output for). */
  secrets: string[];
  /** Knobs: hand out this many refused tokens from /mint; token life; rotation; the refresh token that works now. */
  badMints: number;
  lifetimeSeconds: number;
  rotate: boolean;
  refreshToken: string;
  /** A fresh access token, as the token endpoint would issue. */
  issue(): string;
  deviceUrl: string;
  authorizeUrl: string;
  deviceLifetime: number;
  deviceInterval: number;
  slowDownAt: number;
  devicePolls: number;
  tooFast: number;
  denyAuthorize: boolean;
  pkceFailures: number;
  lastAuthorize?: URLSearchParams;
  approveDevice(): void;
  denyDevice(): void;
  close(): Promise<void>;
}

interface Device {
  code: string;
  state: 'pending' | 'approved' | 'denied' | 'used';
  expires: number;
  /** ms the client must wait between polls. */
  interval: number;
  last: number;
}

export async function startOAuthServer(o: OAuthServerOptions): Promise<OAuthServer> {
  const live = new Map<string, number>(); // token -> expiry (ms)
  let base = '';
  const issue = (): string => {
    const t = `at-${randomBytes(18).toString('hex')}`;
    live.set(t, Date.now() + api.lifetimeSeconds * 1000);
    api.secrets.push(t);
    return t;
  };
  let device: Device | undefined;
  const codes = new Map<string, { challenge: string; redirect: string; expires: number }>();
  /** A grant's reply: an access token and a new refresh token, the one that works from now on. */
  const granted = (): Record<string, unknown> => {
    api.refreshToken = `rt-${randomBytes(12).toString('hex')}`;
    api.secrets.push(api.refreshToken);
    return { access_token: issue(), token_type: 'Bearer', expires_in: api.lifetimeSeconds, refresh_token: api.refreshToken, scope: 'mail' };
  };
  const reply = (res: http.ServerResponse, status: number, body: unknown, type = 'application/json'): void => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const clientOk = form.get('client_id') === o.clientId && form.get('client_secret') === o.clientSecret;
      const url = new URL(req.url ?? '/', base);
      if (req.method === 'POST' && req.url === '/device') {
        if (form.get('client_id') !== o.clientId) return reply(res, 401, { error: 'invalid_client' });
        if ((form.get('scope') ?? '') === '') return reply(res, 400, { error: 'invalid_scope' });
        const d: Device = { code: `dc-${randomBytes(16).toString('hex')}`, state: 'pending', expires: Date.now() + api.deviceLifetime * 1000, interval: api.deviceInterval * 1000, last: 0 };
        device = d;
        api.devicePolls = 0;
        api.secrets.push(d.code);
        const userCode = randomBytes(4).toString('hex').toUpperCase();
        return reply(res, 200, { device_code: d.code, user_code: userCode, verification_uri: `${base}/device-verify`, expires_in: api.deviceLifetime, interval: api.deviceInterval });
      }
      if (req.method === 'GET' && url.pathname === '/authorize') {
        const q = url.searchParams;
        api.lastAuthorize = q;
        const redirect = q.get('redirect_uri') ?? '';
        // RFC 8252 §7.3: a loopback IP literal, any port, http.
        if (!/^http:\/\/127\.0\.0\.1:\d+\/$/.test(redirect)) return reply(res, 400, { error: 'invalid_request', error_description: 'redirect_uri' });
        if (q.get('response_type') !== 'code' || q.get('client_id') !== o.clientId) return reply(res, 400, { error: 'invalid_request' });
        const challenge = q.get('code_challenge') ?? '';
        if (q.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(challenge)) return reply(res, 400, { error: 'invalid_request', error_description: 'PKCE S256 required' });
        const to = new URL(redirect);
        const st = q.get('state');
        if (api.denyAuthorize) to.searchParams.set('error', 'access_denied');
        else {
          const code = `ac-${randomBytes(16).toString('hex')}`;
          api.secrets.push(code);
          codes.set(code, { challenge, redirect, expires: Date.now() + 60_000 });
          to.searchParams.set('code', code);
        }
        if (st !== null) to.searchParams.set('state', st);
        res.writeHead(302, { location: to.toString(), 'cache-control': 'no-store' });
        return res.end();
      }
      if (req.method === 'POST' && req.url === '/token' && form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:device_code') {
        if (!clientOk) return reply(res, 401, { error: 'invalid_client' });
        const d = device;
        if (d === undefined || form.get('device_code') !== d.code || d.state === 'used') return reply(res, 400, { error: 'invalid_grant' });
        api.devicePolls++;
        const now = Date.now();
        const early = d.last !== 0 && now - d.last < d.interval - 100;
        d.last = now;
        if (now > d.expires) return reply(res, 400, { error: 'expired_token' });
        if (early || api.devicePolls === api.slowDownAt) {
          if (early) api.tooFast++;
          d.interval += 5000;
          return reply(res, 400, { error: 'slow_down' });
        }
        if (d.state === 'denied') return reply(res, 400, { error: 'access_denied' });
        if (d.state === 'pending') return reply(res, 400, { error: 'authorization_pending' });
        d.state = 'used';
        return reply(res, 200, granted());
      }
      if (req.method === 'POST' && req.url === '/token' && form.get('grant_type') === 'authorization_code') {
        if (!clientOk) return reply(res, 401, { error: 'invalid_client' });
        const c = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        if (c === undefined || c.expires < Date.now() || c.redirect !== form.get('redirect_uri')) return reply(res, 400, { error: 'invalid_grant' });
        const verifier = form.get('code_verifier') ?? '';
        if (createHash('sha256').update(verifier).digest('base64url') !== c.challenge) {
          api.pkceFailures++;
          return reply(res, 400, { error: 'invalid_grant', error_description: 'PKCE verification failed' });
        }
        return reply(res, 200, granted());
      }
      if (req.method === 'POST' && req.url === '/token') {
        if (form.get('grant_type') !== 'refresh_token') return reply(res, 400, { error: 'unsupported_grant_type' });
        if (!clientOk) return reply(res, 401, { error: 'invalid_client' });
        if (form.get('refresh_token') !== api.refreshToken) return reply(res, 400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' });
        api.refreshes++;
        const body: Record<string, unknown> = { access_token: issue(), token_type: 'Bearer', expires_in: api.lifetimeSeconds };
        if (api.rotate) {
          api.refreshToken = `rt-${randomBytes(12).toString('hex')}`;
          api.secrets.push(api.refreshToken);
          body['refresh_token'] = api.refreshToken;
        }
        return reply(res, 200, body);
      }
      if (req.method === 'GET' && req.url === '/mint') {
        api.mints++;
        if (api.badMints > 0) {
          api.badMints--;
          const revoked = `at-revoked-${randomBytes(12).toString('hex')}`;
          api.secrets.push(revoked);
          return reply(res, 200, `${revoked}\n`, 'text/plain');
        }
        return reply(res, 200, `${issue()}\n`, 'text/plain');
      }
      if (req.method === 'POST' && req.url === '/introspect') {
        const until = live.get(form.get('token') ?? '');
        if (until !== undefined && until > Date.now()) {
          api.accepted++;
          return reply(res, 200, { active: true, username: o.user });
        }
        api.rejected++;
        return reply(res, 200, { active: false });
      }
      reply(res, 404, { error: 'not_found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('oauth server: no port');
  base = `http://127.0.0.1:${addr.port}`;
  const api: OAuthServer = {
    tokenUrl: `${base}/token`,
    introspectionUrl: `${base}/introspect`,
    mintUrl: `${base}/mint`,
    refreshes: 0,
    mints: 0,
    accepted: 0,
    rejected: 0,
    secrets: [o.refreshToken, o.clientSecret],
    badMints: 0,
    lifetimeSeconds: o.lifetimeSeconds,
    rotate: o.rotate ?? false,
    refreshToken: o.refreshToken,
    issue,
    deviceUrl: `${base}/device`,
    authorizeUrl: `${base}/authorize`,
    deviceLifetime: 600,
    deviceInterval: 1,
    slowDownAt: 0,
    devicePolls: 0,
    tooFast: 0,
    denyAuthorize: false,
    pkceFailures: 0,
    approveDevice: () => {
      if (device !== undefined) device.state = 'approved';
    },
    denyDevice: () => {
      if (device !== undefined) device.state = 'denied';
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return api;
}
