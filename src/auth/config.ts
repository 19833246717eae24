import type { Problems } from '../domain/problems.js';
import { envRef, type SecretRef } from './secrets.js';
import { stateDir } from '../state/dir.js';
import type { OAuth2Spec } from './oauth2.js';

/** The OAuth2 flags of one account as parsed (`--oauth2-*`, `--target-oauth2-*`, `--smtp-oauth2-*`). */
export interface RawOAuth2Flags {
  tokenCommand?: string;
  tokenUrl?: string;
  clientId?: string;
  clientSecretEnv?: string;
  clientSecretFile?: string;
  refreshTokenEnv?: string;
  refreshTokenFile?: string;
  refreshTokenCommand?: string;
}

/** Token endpoints of the big providers; `--oauth2-token-url google` is short for Google's. */
export const OAUTH2_TOKEN_URLS: Readonly<Record<string, string>> = {
  google: 'https://oauth2.googleapis.com/token',
  microsoft: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
};

/**
 * Check the OAuth2 flags of one account: a token command, or the refresh flow (token URL, client
 * id, one refresh-token source, at most one client-secret source). Secrets by reference only.
 * Problems are added to `problems`; `prefix` is the flag prefix ('' or 'target-').
 */
export function oauth2Spec(problems: Problems, raw: RawOAuth2Flags, prefix: string, cacheDir = stateDir()): OAuth2Spec | undefined {
  const f = (name: string): string => `--${prefix}oauth2-${name}`;
  const flow = raw.tokenUrl ?? raw.clientId ?? raw.clientSecretEnv ?? raw.clientSecretFile ?? raw.refreshTokenEnv ?? raw.refreshTokenFile ?? raw.refreshTokenCommand;
  if (raw.tokenCommand !== undefined) {
    if (flow !== undefined) problems.push(`give ${f('token-command')} or the refresh flow (${f('token-url')}, ...), not both`);
    else if (raw.tokenCommand.trim() === '') problems.push(`${f('token-command')} is empty`);
    else return { kind: 'command', command: raw.tokenCommand };
    return undefined;
  }
  const n = problems.length;
  let tokenUrl: string | undefined;
  if (raw.tokenUrl === undefined) problems.push(`${f('token-url')} URL is required for the refresh flow (or "google", "microsoft")`);
  else {
    tokenUrl = endpointUrl(problems, f('token-url'), OAUTH2_TOKEN_URLS[raw.tokenUrl.toLowerCase()] ?? raw.tokenUrl);
  }
  if (raw.clientId === undefined || raw.clientId.trim() === '') problems.push(`${f('client-id')} ID is required for the refresh flow`);
  const refreshToken = oneRef(problems, f('refresh-token'), { env: raw.refreshTokenEnv, file: raw.refreshTokenFile, command: raw.refreshTokenCommand }, true);
  const clientSecret = oneRef(problems, f('client-secret'), { env: raw.clientSecretEnv, file: raw.clientSecretFile }, false);
  if (problems.length > n || tokenUrl === undefined || raw.clientId === undefined || refreshToken === undefined) return undefined;
  return { kind: 'refresh', tokenUrl, clientId: raw.clientId, refreshToken, ...(clientSecret === undefined ? {} : { clientSecret }), cacheDir };
}

/** An OAuth2 endpoint given by `flag`: https:// (http:// only on loopback), no credentials in it; else a problem and undefined. */
export function endpointUrl(problems: Problems, flag: string, text: string): string | undefined {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    problems.push(`${flag} ${text}: not a URL`);
    return undefined;
  }
  const loopback = u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]';
  if (!(u.protocol === 'https:' || (u.protocol === 'http:' && loopback))) problems.push(`${flag} must be https:// (http:// only on loopback)`);
  else if (u.username !== '' || u.password !== '') problems.push(`${flag} may not hold credentials`);
  else return text;
  return undefined;
}

function oneRef(problems: Problems, flag: string, refs: { env?: string | undefined; file?: string | undefined; command?: string | undefined }, required: boolean): SecretRef | undefined {
  const given = Object.entries(refs).filter((e): e is [string, string] => e[1] !== undefined);
  const names = Object.keys(refs).map((k) => `${flag}-${k}`);
  if (given.length > 1) problems.push(`give only one of ${names.join(', ')}`);
  else if (given.length === 0) {
    if (required) problems.push(`the refresh flow needs ${names.join(' or ')}`);
  } else {
    const [kind, value] = given[0] as [string, string];
    return kind === 'env' ? envRef(value) : kind === 'file' ? { file: value } : { command: value };
  }
  return undefined;
}
