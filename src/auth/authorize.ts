import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, rename, unlink } from 'node:fs/promises';
import http from 'node:http';
import { dirname } from 'node:path';
import { MailferryError, destinationError, errnoCode } from '../domain/errors.js';
import { registerSecret } from '../log/logger.js';
import { checkNotLink, openNoFollow, tempName } from '../state/no-follow.js';
import { oauthErrorCode, postForm } from './oauth2.js';

/**
 * `mailferry oauth2 authorize`: the one-time consent that yields a refresh token, which the
 * refresh flow of oauth2.ts then turns into access tokens on every run. Two grants:
 *
 * - Device authorization (RFC 8628), where the provider has a device endpoint (Microsoft; Google
 *   for "TVs and Limited Input devices" clients): POST client_id and scope to it, print the
 *   verification URI and the user code, then poll the token endpoint with
 *   grant_type=urn:ietf:params:oauth:grant-type:device_code every `interval` seconds (5 when not
 *   given, §3.5): `authorization_pending` polls on, `slow_down` adds 5 s to the interval for this
 *   and every later poll, `access_denied` (Microsoft: `authorization_declined`) and
 *   `expired_token` stop with an 'auth' error (exit 4), as does the code's own `expires_in`.
 * - Authorization code with PKCE (RFC 7636, S256) and a loopback redirect (RFC 8252 §7.3): listen
 *   on http://127.0.0.1:PORT/ (a free port), print the authorization URL, take the one redirect that
 *   carries our `state`, exchange its code with the verifier. An `error` in the redirect
 *   (access_denied) is exit 4; no redirect within `waitMs` is exit 4 too (start again).
 *
 * Every token the server sends is registered with the log redaction at once; none is printed.
 * The refresh token is stored by `storeRefreshToken`: mode 0600, created exclusively under a
 * random name and renamed over FILE, never through a symbolic link.
 */
export interface Client {
  tokenUrl: string;
  clientId: string;
  clientSecret?: string;
  scope: string;
  signal: AbortSignal;
  /** Tells the user what to do (the URL, the code): stderr. */
  say: (line: string) => void;
}

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

function clientForm(c: Client, fields: Record<string, string>): URLSearchParams {
  const form = new URLSearchParams({ ...fields, client_id: c.clientId });
  if (c.clientSecret !== undefined) form.set('client_secret', c.clientSecret);
  return form;
}

/** The refresh token of a successful token reply (RFC 6749 §5.1), every token in it registered as a secret. */
function refreshTokenOf(body: Record<string, unknown>, origin: string): string {
  for (const k of ['access_token', 'refresh_token', 'id_token']) {
    const v = body[k];
    if (typeof v === 'string' && v !== '') registerSecret(v);
  }
  const rt = body['refresh_token'];
  if (typeof rt !== 'string' || rt === '') {
    throw new MailferryError('protocol', `${origin} granted access but sent no refresh token (Microsoft: add the offline_access scope; Google: the consent must ask for offline access)`);
  }
  return rt;
}

function refused(origin: string, status: number, body: Record<string, unknown>, step: string): MailferryError {
  const code = oauthErrorCode(status, body);
  if (status >= 500) return new MailferryError('network', `${origin} failed ${step} (${code})`);
  const hint = code === 'invalid_client' || code === 'unauthorized_client' ? '; check --client-id and the client secret' : '';
  return new MailferryError('auth', `${origin} refused ${step} (${code})${hint}`);
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(done, ms);
    function done(): void {
      signal.removeEventListener('abort', stop);
      resolve();
    }
    function stop(): void {
      clearTimeout(t);
      reject(new MailferryError('interrupted', 'interrupted before the authorization was granted'));
    }
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });

/** RFC 8628: the device authorization grant. Resolves to the refresh token. */
export async function deviceFlow(c: Client & { deviceUrl: string }): Promise<string> {
  const origin = new URL(c.deviceUrl).host;
  const start = await postForm(c.deviceUrl, clientForm(c, { scope: c.scope }), 'OAuth2 device authorization endpoint');
  if (start.status !== 200) throw refused(origin, start.status, start.body, 'the device authorization');
  const b = start.body;
  const deviceCode = b['device_code'];
  const userCode = b['user_code'];
  // RFC 8628 §3.2 says verification_uri; Google's reply names it verification_url.
  const uri = b['verification_uri'] ?? b['verification_url'];
  if (typeof deviceCode !== 'string' || typeof userCode !== 'string' || typeof uri !== 'string' || deviceCode === '') {
    throw new MailferryError('protocol', `${origin} sent no device_code, user_code and verification_uri`);
  }
  registerSecret(deviceCode);
  const expiresIn = typeof b['expires_in'] === 'number' && b['expires_in'] > 0 ? b['expires_in'] : 900;
  let interval = typeof b['interval'] === 'number' && b['interval'] > 0 ? b['interval'] : 5;
  const deadline = Date.now() + expiresIn * 1000;
  c.say(`To authorize mailferry, open ${printable(uri)} and enter the code ${printable(userCode)} (valid ${Math.round(expiresIn / 60)} min)`);
  const tokenOrigin = new URL(c.tokenUrl).host;
  for (;;) {
    await sleep(interval * 1000, c.signal);
    if (Date.now() > deadline + interval * 1000) throw expired();
    const r = await postForm(c.tokenUrl, clientForm(c, { grant_type: DEVICE_GRANT, device_code: deviceCode }));
    if (r.status === 200) return refreshTokenOf(r.body, tokenOrigin);
    const code = oauthErrorCode(r.status, r.body);
    if (code === 'authorization_pending') continue;
    if (code === 'slow_down') {
      interval += 5; // §3.5: for this and all subsequent requests
      continue;
    }
    if (code === 'access_denied' || code === 'authorization_declined') throw denied();
    if (code === 'expired_token' || code === 'bad_verification_code') throw expired();
    throw refused(tokenOrigin, r.status, r.body, 'the device code');
  }
}

const denied = (): MailferryError => new MailferryError('auth', 'the authorization was denied in the browser; run mailferry oauth2 authorize again to retry');
const expired = (): MailferryError => new MailferryError('auth', 'the authorization code expired before it was used; run mailferry oauth2 authorize again');

/** A server's text in one line of ours: printable ASCII only (a URL, a user code). */
function printable(s: string): string {
  return s.replace(/[^\x21-\x7e]/g, '?').slice(0, 512);
}

const base64url = (b: Buffer): string => b.toString('base64url');

/**
 * RFC 7636 + RFC 8252: the authorization code grant with PKCE and a loopback redirect.
 * `extra`: provider parameters of the authorization request (Google: access_type=offline).
 */
export async function codeFlow(c: Client & { authUrl: string; loginHint?: string; extra?: Readonly<Record<string, string>>; waitMs: number }): Promise<string> {
  const verifier = base64url(randomBytes(32)); // 43 characters of [A-Za-z0-9-_] (§4.1)
  const challenge = base64url(createHash('sha256').update(verifier).digest());
  const state = base64url(randomBytes(16));
  registerSecret(verifier);
  const { server, port } = await listenLoopback();
  try {
    const redirectUri = `http://127.0.0.1:${port}/`;
    const url = new URL(c.authUrl);
    const params: Record<string, string> = {
      response_type: 'code',
      client_id: c.clientId,
      redirect_uri: redirectUri,
      scope: c.scope,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...(c.loginHint === undefined ? {} : { login_hint: c.loginHint }),
      ...c.extra,
    };
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    c.say(`To authorize mailferry, open this URL in a browser on this machine (it redirects to ${redirectUri}):`);
    c.say(url.toString());
    const code = await redirected(server, state, c.waitMs, c.signal);
    registerSecret(code);
    const origin = new URL(c.tokenUrl).host;
    const r = await postForm(c.tokenUrl, clientForm(c, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }));
    if (r.status !== 200) {
      const err = oauthErrorCode(r.status, r.body);
      if (err === 'invalid_grant') throw new MailferryError('auth', `${origin} refused the authorization code (invalid_grant: expired, used or not ours); run mailferry oauth2 authorize again`);
      throw refused(origin, r.status, r.body, 'the authorization code');
    }
    return refreshTokenOf(r.body, origin);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

function listenLoopback(): Promise<{ server: http.Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = http.createServer();
    server.once('error', (e: unknown) => reject(new MailferryError('network', `cannot listen on 127.0.0.1 for the redirect: ${errnoCode(e) ?? 'failed'}`)));
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      if (a === null || typeof a === 'string') reject(new MailferryError('internal', 'no loopback port'));
      else resolve({ server, port: a.port });
    });
  });
}

/** The code of the first redirect to `/` that carries our state (others are answered 400 and ignored). */
function redirected(server: http.Server, state: string, waitMs: number, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const finish = (e: MailferryError | undefined, code?: string): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      server.off('request', onRequest);
      if (e !== undefined) reject(e);
      else resolve(code ?? '');
    };
    const onAbort = (): void => finish(new MailferryError('interrupted', 'interrupted before the authorization was granted'));
    const timer = setTimeout(() => finish(new MailferryError('auth', `no authorization arrived within ${Math.round(waitMs / 1000)} s; run mailferry oauth2 authorize again`)), waitMs);
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const q = new URL(req.url ?? '/', 'http://127.0.0.1').searchParams;
      const page = (status: number, text: string): void => {
        res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', connection: 'close' });
        res.end(`${text}\n`);
      };
      if (req.method !== 'GET' || q.get('state') !== state) return page(400, 'mailferry: not the redirect it waits for.');
      const error = q.get('error');
      const code = q.get('code');
      if (error !== null) {
        page(200, 'mailferry: the authorization was not granted. You may close this window.');
        return finish(error === 'access_denied' ? denied() : new MailferryError('auth', `the authorization server answered ${printable(error).slice(0, 64)}`));
      }
      if (code === null || code === '') return page(400, 'mailferry: the redirect carries no code.');
      page(200, 'mailferry is authorized. You may close this window.');
      finish(undefined, code);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    server.on('request', onRequest);
  });
}

/** FILE is no symbolic link and its directory is writable: checked before the user is sent to the browser. */
export async function checkTokenFile(file: string): Promise<void> {
  await checkNotLink(file);
  try {
    await access(dirname(file), constants.W_OK);
  } catch (e: unknown) {
    throw destinationError(e, `refresh token file ${file}`);
  }
}

/** Store the refresh token in FILE, mode 0600: written to an exclusive temporary file (O_NOFOLLOW), fsynced, renamed over FILE. */
export async function storeRefreshToken(file: string, token: string): Promise<void> {
  await checkNotLink(file);
  const tmp = tempName(file);
  try {
    const fh = await openNoFollow(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${token}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e: unknown) {
    await unlink(tmp).catch(() => undefined);
    throw destinationError(e, `refresh token file ${file}`);
  }
}
