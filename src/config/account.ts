import { readFileSync } from 'node:fs';
import { MailferryError } from '../domain/errors.js';
import type { RemoteEndpoint, TlsMode } from '../endpoints/url.js';
import { oauth2Spec, type RawOAuth2Flags } from '../auth/config.js';
import type { AuthSpec } from '../auth/login.js';
import { canPrompt } from '../auth/prompt.js';
import { envRef, type SecretRef } from '../auth/secrets.js';
import { DEFAULTS } from './defaults.js';
import { attempt, type Problems } from '../domain/problems.js';

/** A remote account (IMAP or POP3) to connect to, with how to authenticate and trust it. */
export interface RemoteAccount {
  endpoint: RemoteEndpoint;
  /** A password source (or the TTY prompt), or OAuth2 (src/auth/). */
  auth: AuthSpec;
  ca?: Buffer;
  insecure: boolean;
  connections: number;
}

export interface RawAccountFlags {
  passwordEnv?: string;
  passwordFile?: string;
  passwordCommand?: string;
  oauth2?: RawOAuth2Flags;
  tlsMode?: string;
  tlsInsecure?: boolean;
  ca?: string;
  connections?: number;
}

/** The same flags for another account of the command, named with a prefix: `targetPasswordEnv` (`--target-password-env`), `smtpOauth2`. */
export type PrefixedAccountFlags<P extends string> = { [K in keyof RawAccountFlags as `${P}${Capitalize<K>}`]?: RawAccountFlags[K] };

/** Every key of RawAccountFlags, checked complete by the compiler. */
const ACCOUNT_KEYS = Object.keys({
  passwordEnv: true,
  passwordFile: true,
  passwordCommand: true,
  oauth2: true,
  tlsMode: true,
  tlsInsecure: true,
  ca: true,
  connections: true,
} satisfies Record<keyof RawAccountFlags, true>) as (keyof RawAccountFlags)[];

/** Another account's flags (`prefix` 'target' or 'smtp') as the plain ones, for account() and trust(); those not given left out. */
export function prefixedAccount<P extends string>(raw: PrefixedAccountFlags<P>, prefix: P): RawAccountFlags {
  const given: Record<string, unknown> = raw;
  const out: Record<string, unknown> = {};
  for (const k of ACCOUNT_KEYS) {
    const v = given[`${prefix}${k[0]?.toUpperCase() ?? ''}${k.slice(1)}`];
    if (v !== undefined) out[k] = v;
  }
  return out as RawAccountFlags;
}

/**
 * Credentials (exactly one kind: a password source, or OAuth2; neither: the TTY prompt when there
 * is a terminal), TLS mode, CA file and connection count of one account, checked.
 * `prefix` is '' for the plain flags, 'target-' for the target's, 'smtp-' for the relay's.
 */
export function account(problems: Problems, endpoint: RemoteEndpoint | undefined, raw: RawAccountFlags, prefix: string): RemoteAccount | undefined {
  const f = (name: string): string => `--${prefix}${name}`;
  const given = [raw.passwordEnv, raw.passwordFile, raw.passwordCommand].filter((x) => x !== undefined);
  const oauth2 = raw.oauth2 !== undefined && Object.values(raw.oauth2).some((v) => v !== undefined) ? raw.oauth2 : undefined;
  let secret: SecretRef | 'prompt' | undefined;
  let auth: AuthSpec | undefined;
  if (oauth2 !== undefined) {
    if (given.length > 0) problems.push(`give a password source or OAuth2 (${f('oauth2-...')}), not both`);
    const spec = oauth2Spec(problems, oauth2, prefix);
    if (spec !== undefined) auth = { kind: 'oauth2', oauth2: spec };
  } else if (given.length === 0) {
    if (canPrompt()) secret = 'prompt';
    else {
      problems.push(
        `a password source is required: ${f('password-env')} VAR, ${f('password-file')} FILE or ${f('password-command')} CMD (or OAuth2: ${f('oauth2-token-command')} CMD or ${f('oauth2-token-url')})`,
      );
    }
  } else if (given.length > 1) problems.push(`give only one of ${f('password-env')}, ${f('password-file')}, ${f('password-command')}`);
  else if (raw.passwordEnv !== undefined) secret = envRef(raw.passwordEnv);
  else if (raw.passwordFile !== undefined) secret = { file: raw.passwordFile };
  else if (raw.passwordCommand !== undefined) secret = { command: raw.passwordCommand };
  if (secret !== undefined) auth = { kind: 'password', secret };

  const tls = trust(problems, endpoint, raw, prefix);
  const connections = raw.connections ?? DEFAULTS.connections;
  if (!Number.isInteger(connections) || connections < 1 || connections > 64) problems.push(`${f('connections')} must be 1..64`);
  if (tls.endpoint === undefined || auth === undefined) return undefined;
  return { endpoint: tls.endpoint, auth, ...(tls.ca === undefined ? {} : { ca: tls.ca }), insecure: tls.insecure, connections };
}

/** TLS mode override, CA file and --tls-insecure of one account, checked (also for an SMTP relay without AUTH). */
export function trust(
  problems: Problems,
  endpoint: RemoteEndpoint | undefined,
  raw: Pick<RawAccountFlags, 'tlsMode' | 'tlsInsecure' | 'ca'>,
  prefix: string,
): { endpoint: RemoteEndpoint | undefined; ca?: Buffer; insecure: boolean } {
  const f = (name: string): string => `--${prefix}${name}`;
  let ep = endpoint;
  if (raw.tlsMode !== undefined) {
    const modes: TlsMode[] = ['tls', 'starttls', 'plain'];
    if (!modes.includes(raw.tlsMode as TlsMode)) problems.push(`${f('tls-mode')} must be one of ${modes.join(', ')}`);
    else if (ep !== undefined) ep = { ...ep, tls: raw.tlsMode as TlsMode };
  }
  let ca: Buffer | undefined;
  if (raw.ca !== undefined) {
    const path = raw.ca;
    ca = attempt(problems, () => {
      try {
        return readFileSync(path);
      } catch {
        throw new MailferryError('usage', `cannot read ${f('ca')} file ${path}`);
      }
    });
  }
  return { endpoint: ep, ...(ca === undefined ? {} : { ca }), insecure: raw.tlsInsecure ?? false };
}
