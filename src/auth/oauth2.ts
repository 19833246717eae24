import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readSecret, runCommand, type SecretRef } from './secrets.js';
import { destinationError, errnoCode, MailferryError } from '../domain/errors.js';
import type { RemoteEndpoint } from '../endpoints/url.js';
import { registerSecret } from '../log/logger.js';
import { writeFileAtomic } from '../state/atomic.js';
import type { Credential, Credentials } from './credentials.js';

/**
 * OAuth2 access tokens for IMAP, POP3 and SMTP logins (SASL XOAUTH2 / OAUTHBEARER, RFC 7628).
 *
 * Two sources:
 * - `command`: `--oauth2-token-command CMD`, run without a shell, output trimmed, re-run for every
 *   login (each new connection; the token of the up-front check serves the first one), so a token
 *   that expired is never reused and whatever the command caches or refreshes stays its business.
 * - `refresh`: the built-in refresh-token grant (RFC 6749 §6): POST grant_type=refresh_token with
 *   the client id (and secret, when the client has one) to the token URL. The access token is kept
 *   until `expires_in` minus a margin (a tenth of its life, at most 60 s) and cached in
 *   `$XDG_STATE_HOME/mailferry/oauth2-<16 hex>.json` (mode 0600, directory 0700; the hex is a hash
 *   of token URL, client id and account, no secret in the name), so the next run reuses it.
 *   A refresh token the server rotates (a `refresh_token` in the reply) is stored in the same file,
 *   tied to (a hash of) the refresh token it descends from: while the configured one is unchanged,
 *   the stored one is used; give a new one (re-authorization) and it wins.
 *
 * Errors: token endpoint unreachable or timing out: 'network' (exit 5, retryable mid-run);
 * `invalid_grant`: 'auth' (exit 4), re-authorize; `invalid_client`: 'auth', check id and secret.
 */
export type OAuth2Spec =
  | { kind: 'command'; command: string }
  | { kind: 'refresh'; tokenUrl: string; clientId: string; clientSecret?: SecretRef; refreshToken: SecretRef; cacheDir: string };

const TIMEOUT_MS = 30_000;

export function commandTokens(command: string): Credentials {
  let unused: string | undefined;
  let first = true;
  return {
    kind: 'oauth2',
    renewable: true,
    get: async () => {
      let accessToken = unused;
      unused = undefined;
      if (accessToken === undefined) {
        accessToken = await runCommand(command, 'OAuth2 token command');
        if (accessToken === '') throw new MailferryError('usage', 'the OAuth2 token command printed nothing');
        registerSecret(accessToken);
        if (first) unused = accessToken; // the up-front check's token serves the first login
        first = false;
      }
      return { kind: 'oauth2', accessToken };
    },
    invalidate: () => (unused = undefined),
  };
}

interface Cached {
  accessToken: string;
  /** ms since the epoch: reuse the token before this, refresh after. */
  refreshAt: number;
  /** A rotated refresh token and the sha256 of the configured one it descends from. */
  refreshToken?: string;
  replaces?: string;
}

/** The cache file of one account at one token endpoint. */
export function tokenCachePath(cacheDir: string, tokenUrl: string, clientId: string, endpoint: RemoteEndpoint): string {
  const key = createHash('sha256').update(`${tokenUrl}\n${clientId}\n${endpoint.user.toLowerCase()}@${endpoint.host.toLowerCase()}`).digest('hex');
  return join(cacheDir, `oauth2-${key.slice(0, 16)}.json`);
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

export function refreshTokens(spec: Extract<OAuth2Spec, { kind: 'refresh' }>, endpoint: RemoteEndpoint): Credentials {
  const file = tokenCachePath(spec.cacheDir, spec.tokenUrl, spec.clientId, endpoint);
  const origin = new URL(spec.tokenUrl).host;
  let secrets: Promise<{ refreshToken: string; clientSecret?: string }> | undefined;
  let current: Cached | undefined;
  let loaded = false;
  let inflight: Promise<Cached> | undefined;

  const readSecrets = async (): Promise<{ refreshToken: string; clientSecret?: string }> => {
    const refreshToken = await readSecret(spec.refreshToken, 'OAuth2 refresh token');
    if (spec.clientSecret === undefined) return { refreshToken };
    return { refreshToken, clientSecret: await readSecret(spec.clientSecret, 'OAuth2 client secret') };
  };

  const save = async (c: Cached): Promise<void> => {
    try {
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      const body = { version: 1, account: `${endpoint.user}@${endpoint.host}`, tokenUrl: spec.tokenUrl, clientId: spec.clientId, ...c };
      await writeFileAtomic(file, `${JSON.stringify(body, null, 2)}\n`, 0o600);
    } catch (e: unknown) {
      throw destinationError(e, `OAuth2 token cache ${file}`);
    }
  };

  const refresh = async (): Promise<Cached> => {
    const s = await (secrets ??= readSecrets());
    const configured = sha256(s.refreshToken);
    const rotated = current?.replaces === configured ? current.refreshToken : undefined;
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rotated ?? s.refreshToken, client_id: spec.clientId });
    if (s.clientSecret !== undefined) form.set('client_secret', s.clientSecret);
    const reply = await post(spec.tokenUrl, origin, form);
    const accessToken = reply['access_token'];
    if (typeof accessToken !== 'string' || accessToken === '') throw new MailferryError('protocol', `the OAuth2 token endpoint ${origin} sent no access_token`);
    registerSecret(accessToken);
    const life = typeof reply['expires_in'] === 'number' && reply['expires_in'] > 0 ? reply['expires_in'] : 3600;
    const next: Cached = { accessToken, refreshAt: Date.now() + (life - Math.min(60, life / 10)) * 1000 };
    const newRefresh = reply['refresh_token'];
    if (typeof newRefresh === 'string' && newRefresh !== '' && newRefresh !== s.refreshToken) {
      registerSecret(newRefresh);
      Object.assign(next, { refreshToken: newRefresh, replaces: configured });
    } else if (rotated !== undefined) Object.assign(next, { refreshToken: rotated, replaces: configured });
    await save(next);
    return next;
  };

  return {
    kind: 'oauth2',
    renewable: true,
    get: async () => {
      // The configured secrets first, so a bad reference is a usage error before any connection.
      await (secrets ??= readSecrets());
      if (!loaded) {
        loaded = true;
        current = await load(file);
      }
      if (current === undefined || Date.now() >= current.refreshAt) {
        inflight ??= refresh().finally(() => (inflight = undefined));
        current = await inflight;
      }
      return { kind: 'oauth2', accessToken: current.accessToken };
    },
    invalidate: (c: Credential) => {
      // Keep a rotated refresh token; force the next get() to fetch a new access token.
      if (c.kind === 'oauth2' && current?.accessToken === c.accessToken) current = { ...current, refreshAt: 0 };
    },
  };
}

async function load(file: string): Promise<Cached | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined; // no cache yet (or unreadable): refresh
  }
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    const { accessToken, refreshAt, refreshToken, replaces } = o;
    if (typeof accessToken !== 'string' || typeof refreshAt !== 'number') return undefined;
    registerSecret(accessToken);
    const c: Cached = { accessToken, refreshAt };
    if (typeof refreshToken === 'string' && typeof replaces === 'string') {
      registerSecret(refreshToken);
      Object.assign(c, { refreshToken, replaces });
    }
    return c;
  } catch {
    return undefined; // a damaged cache is only a cache
  }
}

/**
 * POST a form to an OAuth2 endpoint (token, device authorization): its HTTP status and JSON object
 * (empty when the body is not one). Unreachable or timing out: 'network' (exit 5, retryable).
 */
export async function postForm(url: string, form: URLSearchParams, what = 'OAuth2 token endpoint'): Promise<{ status: number; body: Record<string, unknown> }> {
  const origin = new URL(url).host;
  let res: Response;
  let body: unknown;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      signal: AbortSignal.timeout(TIMEOUT_MS),
      redirect: 'error',
    });
    body = await res.json().catch(() => undefined);
  } catch (e: unknown) {
    const cause = e instanceof Error ? e.cause : undefined;
    const why = e instanceof Error && e.name === 'TimeoutError' ? 'timed out' : (errnoCode(cause) ?? (cause instanceof Error ? cause.message : 'failed'));
    throw new MailferryError('network', `cannot reach the ${what} ${origin}: ${why}`, { retryable: true });
  }
  return { status: res.status, body: typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {} };
}

/** RFC 6749 §5.2 error code of a reply; only the code is ever printed (a description is the server's free text). */
export function oauthErrorCode(status: number, body: Record<string, unknown>): string {
  const e = body['error'];
  return typeof e === 'string' && /^[\w.-]{1,64}$/.test(e) ? e : `HTTP ${status}`;
}

/** POST a form to the token endpoint; the JSON reply of a 2xx, else a MailferryError. */
async function post(url: string, origin: string, form: URLSearchParams): Promise<Record<string, unknown>> {
  const { status, body: o } = await postForm(url, form);
  if (status >= 200 && status < 300) return o;
  const code = oauthErrorCode(status, o);
  if (code === 'invalid_grant') {
    throw new MailferryError('auth', `the OAuth2 refresh token was refused by ${origin} (invalid_grant: expired or revoked); re-authorize and give mailferry the new refresh token`);
  }
  if (code === 'invalid_client' || code === 'unauthorized_client') {
    throw new MailferryError('auth', `${origin} refused the OAuth2 client (${code}); check --oauth2-client-id and the client secret`);
  }
  if (status >= 500) throw new MailferryError('network', `the OAuth2 token endpoint ${origin} failed (${code})`, { retryable: true });
  throw new MailferryError('auth', `the OAuth2 token endpoint ${origin} refused the refresh (${code})`);
}
