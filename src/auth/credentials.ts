import { MailferryError } from '../domain/errors.js';
import { registerSecret } from '../log/logger.js';

/**
 * How mailferry logs in to one account: a password, or an OAuth2 access token (SASL XOAUTH2 or
 * OAUTHBEARER, RFC 7628). Every source and sink asks its Credentials for each new connection, so a
 * token that expired mid-run is replaced by the next connection, not the last one.
 *
 * Contract:
 * - `get()` gives what to log in with now. A password is read once (env, file, command or the TTY
 *   prompt) and kept; a token is kept while it is valid and fetched anew when it has expired.
 * - `invalidate(c)` says the server refused `c`; the next `get()` fetches a fresh token. Passwords
 *   are not renewable (`renewable` false): a refused password is final.
 * - Every secret read or received is registered with the logger's redaction (registerSecret).
 */
export type Credential = { kind: 'password'; password: string } | { kind: 'oauth2'; accessToken: string };

export interface Credentials {
  readonly kind: Credential['kind'];
  readonly renewable: boolean;
  get(): Promise<Credential>;
  invalidate(rejected: Credential): void;
}

/** imapflow's `auth` option for a credential. */
export function imapAuth(user: string, c: Credential): { user: string; pass: string } | { user: string; accessToken: string } {
  return c.kind === 'password' ? { user, pass: c.password } : { user, accessToken: c.accessToken };
}

/** nodemailer's `auth` option for a credential (SMTP AUTH PLAIN/LOGIN or XOAUTH2). */
export function smtpAuth(user: string, c: Credential): { user: string; pass: string } | { type: 'OAuth2'; user: string; accessToken: string } {
  return c.kind === 'password' ? { user, pass: c.password } : { type: 'OAuth2', user, accessToken: c.accessToken };
}

/** The server offers neither OAUTHBEARER nor XOAUTH2: no fresh token helps (exit 4, no retry). */
export class NoOAuth2Login extends MailferryError {
  constructor(where: string, offered: string[]) {
    super('auth', `${where} offers no OAuth2 login (it offers ${offered.join(' ') || 'no SASL mechanism'}; mailferry needs OAUTHBEARER or XOAUTH2); use a password instead`);
  }
}

/**
 * Log in with a credential; when the server refuses a renewable one (a token that expired or was
 * revoked early), invalidate it and try once more with a fresh one. A second refusal is final.
 */
export async function withCredential<T>(creds: Credentials, where: string, login: (c: Credential) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const c = await creds.get();
    try {
      return await login(c);
    } catch (e: unknown) {
      if (!(e instanceof MailferryError) || e.kind !== 'auth' || c.kind !== 'oauth2' || e instanceof NoOAuth2Login) throw e;
      creds.invalidate(c);
      if (attempt === 0 && creds.renewable) continue;
      throw new MailferryError('auth', `login refused by ${where}: the OAuth2 access token was not accepted (expired, revoked, or for another user or scope)`, {
        cause: e,
      });
    }
  }
}

/** A fixed password (tests, and callers that already hold one). */
export function passwordCredentials(password: string): Credentials {
  registerSecret(password);
  return { kind: 'password', renewable: false, get: () => Promise.resolve({ kind: 'password', password }), invalidate: () => undefined };
}
