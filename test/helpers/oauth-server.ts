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
 */
import { randomBytes } from 'node:crypto';
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
  close(): Promise<void>;
}

export async function startOAuthServer(o: OAuthServerOptions): Promise<OAuthServer> {
  const live = new Map<string, number>(); // token -> expiry (ms)
  const issue = (): string => {
    const t = `at-${randomBytes(18).toString('hex')}`;
    live.set(t, Date.now() + api.lifetimeSeconds * 1000);
    api.secrets.push(t);
    return t;
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
      if (req.method === 'POST' && req.url === '/token') {
        if (form.get('grant_type') !== 'refresh_token') return reply(res, 400, { error: 'unsupported_grant_type' });
        if (form.get('client_id') !== o.clientId || form.get('client_secret') !== o.clientSecret) return reply(res, 401, { error: 'invalid_client' });
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
  const base = `http://127.0.0.1:${addr.port}`;
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
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return api;
}
