import { readFileSync } from 'node:fs';
import { MailferryError } from '../domain/errors.js';
import { parseEndpoint, type LocalEndpoint, type RemoteEndpoint, type TlsMode } from '../endpoints/url.js';
import type { SecretRef } from './secrets.js';

/** What every config loader (backup, restore, migrate) checks the same way. */
/** A remote account (IMAP or POP3) to connect to, with how to authenticate and trust it. */
export interface RemoteAccount {
  endpoint: RemoteEndpoint;
  secret: SecretRef;
  ca?: Buffer;
  insecure: boolean;
  connections: number;
}

export interface RawAccountFlags {
  passwordEnv?: string;
  passwordFile?: string;
  passwordCommand?: string;
  tlsMode?: string;
  tlsInsecure?: boolean;
  ca?: string;
  connections?: number;
}

/** Every problem found, reported together (exit 2) before any I/O. */
export type Problems = string[];

/** Run a check that throws; its MailferryError message becomes one more problem. */
export function attempt<T>(problems: Problems, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e: unknown) {
    problems.push(e instanceof MailferryError ? e.message : String(e));
    return undefined;
  }
}

export function localEndpoint(problems: Problems, text: string, flag: string): LocalEndpoint | undefined {
  const e = attempt(problems, () => parseEndpoint(text));
  if (e === undefined) return undefined;
  if (!('path' in e)) {
    problems.push(`${flag} ${text}: must be a local archive (maildir:DIR or mbox:DIR)`);
    return undefined;
  }
  return e;
}

/**
 * Password source (exactly one), TLS mode, CA file and connection count of one account, checked.
 * `prefix` is '' for the plain flags, 'target-' for the target's, 'smtp-' for the relay's.
 */
export function account(problems: Problems, endpoint: RemoteEndpoint | undefined, raw: RawAccountFlags, prefix: string): RemoteAccount | undefined {
  const f = (name: string): string => `--${prefix}${name}`;
  const given = [raw.passwordEnv, raw.passwordFile, raw.passwordCommand].filter((x) => x !== undefined);
  let secret: SecretRef | undefined;
  if (given.length === 0) {
    problems.push(`a password source is required: ${f('password-env')} VAR, ${f('password-file')} FILE or ${f('password-command')} CMD`);
  } else if (given.length > 1) problems.push(`give only one of ${f('password-env')}, ${f('password-file')}, ${f('password-command')}`);
  else if (raw.passwordEnv !== undefined) secret = { env: raw.passwordEnv };
  else if (raw.passwordFile !== undefined) secret = { file: raw.passwordFile };
  else if (raw.passwordCommand !== undefined) secret = { command: raw.passwordCommand };

  const tls = trust(problems, endpoint, raw, prefix);
  const connections = raw.connections ?? 4;
  if (!Number.isInteger(connections) || connections < 1 || connections > 64) problems.push(`${f('connections')} must be 1..64`);
  if (tls.endpoint === undefined || secret === undefined) return undefined;
  return { endpoint: tls.endpoint, secret, ...(tls.ca === undefined ? {} : { ca: tls.ca }), insecure: tls.insecure, connections };
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
