import { codeFlow, checkTokenFile, deviceFlow, storeRefreshToken } from '../auth/authorize.js';
import { endpointUrl, OAUTH2_TOKEN_URLS } from '../auth/config.js';
import { envRef, readSecret, type SecretRef } from '../auth/secrets.js';
import { MailferryError } from '../domain/errors.js';
import type { Problems } from '../domain/problems.js';
import { attempt } from '../domain/problems.js';
import { rawFlags } from '../config/flags.js';
import { escapeControl, writeStdout } from '../log/redact.js';
import { domainOf, findProfile, loadProfiles, profileForDomain } from '../profiles/load.js';
import type { Command, CommandDeps, Output } from './deps.js';

/**
 * `mailferry oauth2 authorize`: get a refresh token once (auth/authorize.ts: the device flow where
 * the provider has a device endpoint, else the code flow with PKCE and a loopback redirect), store
 * it in --refresh-token-file (0600), and print the flags that use it. The endpoints come from
 * --provider, --profile (or the profile of --user's domain), or --auth-url/--token-url/--device-url.
 * What the user must do (URL, code) goes to stderr; the flags to stdout; never a token.
 */
interface RawFlags {
  action?: string;
  provider?: string;
  profile?: string;
  user?: string;
  authUrl?: string;
  tokenUrl?: string;
  deviceUrl?: string;
  flow?: string;
  clientId?: string;
  clientSecretEnv?: string;
  clientSecretFile?: string;
  scope?: string;
  refreshTokenFile?: string;
  wait?: number;
}

interface Provider {
  authUrl: string;
  tokenUrl: string;
  deviceUrl: string;
  scope: string;
  /** The grant used unless --flow says otherwise. */
  flow: 'device' | 'code';
  /** Parameters of the authorization request this provider needs for a refresh token. */
  extra?: Record<string, string>;
}

/**
 * Google's device flow takes only a short list of scopes, and https://mail.google.com/ is not on it,
 * so Google defaults to the code flow (a "Desktop app" client); Microsoft's device flow takes the
 * IMAP/POP/SMTP scopes (a public client with "Allow public client flows").
 */
const PROVIDERS: Readonly<Record<string, Provider>> = {
  google: {
    authUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
    tokenUrl: OAUTH2_TOKEN_URLS['google'] ?? '',
    deviceUrl: 'https://oauth2.googleapis.com/device/code',
    scope: 'https://mail.google.com/',
    flow: 'code',
    extra: { access_type: 'offline', prompt: 'consent' },
  },
  microsoft: {
    authUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
    tokenUrl: OAUTH2_TOKEN_URLS['microsoft'] ?? '',
    deviceUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/devicecode',
    scope: 'https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/POP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access',
    flow: 'device',
  },
};

export interface AuthorizeConfig {
  flow: 'device' | 'code';
  authUrl?: string;
  tokenUrl: string;
  deviceUrl?: string;
  clientId: string;
  clientSecret?: SecretRef;
  /** How the secret was given, for the printed flags. */
  clientSecretFlag?: [string, string];
  scope: string;
  file: string;
  user?: string;
  extra?: Record<string, string>;
  waitMs: number;
}

export interface AuthorizeResult {
  file: string;
  flags: string[];
}

const WAIT_S = 300;

export function loadAuthorize(args: Readonly<Record<string, unknown>>): AuthorizeConfig {
  const raw = rawFlags<RawFlags>(args);
  const problems: Problems = [];
  let base: Partial<Provider> = {};
  if (raw.provider !== undefined) {
    const p = PROVIDERS[raw.provider.toLowerCase()];
    if (p === undefined) problems.push(`--provider ${raw.provider}: google or microsoft (or --profile, or --auth-url and --token-url)`);
    else base = p;
  } else if (raw.profile !== undefined || raw.user !== undefined) {
    const profile = raw.profile !== undefined ? attempt(problems, () => findProfile(raw.profile ?? '')) : profileForDomain(loadProfiles(), domainOf(raw.user ?? '') ?? '');
    const o = profile?.auth.oauth2;
    if (o !== undefined) {
      // The device endpoint and request parameters of a known provider, by its token URL.
      const known = Object.values(PROVIDERS).find((p) => p.tokenUrl === o.tokenUrl);
      base = { ...known, ...o };
    } else if (profile !== undefined && raw.tokenUrl === undefined) problems.push(`profile ${profile.name} has no OAuth2 settings: give --auth-url, --token-url and --scope`);
  }
  const url = (flag: string, given: string | undefined, fallback: string | undefined): string | undefined =>
    given !== undefined ? endpointUrl(problems, flag, given) : fallback;
  const tokenGiven = raw.tokenUrl === undefined ? undefined : (OAUTH2_TOKEN_URLS[raw.tokenUrl.toLowerCase()] ?? raw.tokenUrl);
  const tokenUrl = url('--token-url', tokenGiven, base.tokenUrl);
  const authUrl = url('--auth-url', raw.authUrl, base.authUrl);
  const deviceUrl = url('--device-url', raw.deviceUrl, base.deviceUrl);
  if (tokenUrl === undefined && raw.tokenUrl === undefined) problems.push('--token-url is required (or --provider google|microsoft, or --profile NAME)');
  const flow = raw.flow ?? (raw.deviceUrl !== undefined ? 'device' : raw.authUrl !== undefined ? 'code' : (base.flow ?? 'code'));
  if (flow !== 'device' && flow !== 'code') problems.push(`--flow ${flow}: device or code`);
  if (flow === 'device' && deviceUrl === undefined && raw.deviceUrl === undefined) problems.push('the device flow needs --device-url');
  if (flow === 'code' && authUrl === undefined && raw.authUrl === undefined) problems.push('the code flow needs --auth-url');
  if (raw.clientId === undefined || raw.clientId.trim() === '') problems.push('--client-id ID is required (the OAuth2 client registered with the provider)');
  const scope = raw.scope ?? base.scope;
  if (scope === undefined || scope.trim() === '') problems.push('--scope is required (or --provider / --profile)');
  if (raw.refreshTokenFile === undefined || raw.refreshTokenFile === '') problems.push('--refresh-token-file FILE is required: where the refresh token is stored (mode 0600)');
  if (raw.clientSecretEnv !== undefined && raw.clientSecretFile !== undefined) problems.push('give --client-secret-env or --client-secret-file, not both');
  const waitS = raw.wait ?? WAIT_S;
  if (!(waitS > 0)) problems.push('--wait must be a number of seconds above 0');
  if (problems.length > 0 || tokenUrl === undefined || raw.clientId === undefined || scope === undefined || raw.refreshTokenFile === undefined) {
    throw new MailferryError('usage', problems.join('; '));
  }
  const secret: [string, string] | undefined =
    raw.clientSecretEnv !== undefined ? ['--oauth2-client-secret-env', raw.clientSecretEnv] : raw.clientSecretFile !== undefined ? ['--oauth2-client-secret-file', raw.clientSecretFile] : undefined;
  return {
    flow: flow as 'device' | 'code',
    tokenUrl,
    ...(authUrl === undefined ? {} : { authUrl }),
    ...(deviceUrl === undefined ? {} : { deviceUrl }),
    clientId: raw.clientId,
    ...(raw.clientSecretEnv !== undefined ? { clientSecret: envRef(raw.clientSecretEnv) } : raw.clientSecretFile !== undefined ? { clientSecret: { file: raw.clientSecretFile } } : {}),
    ...(secret === undefined ? {} : { clientSecretFlag: secret }),
    scope,
    file: raw.refreshTokenFile,
    ...(raw.user === undefined ? {} : { user: raw.user }),
    ...(base.extra === undefined ? {} : { extra: base.extra }),
    waitMs: waitS * 1000,
  };
}

export async function authorize(cfg: AuthorizeConfig, deps: Pick<CommandDeps, 'signal'> & { say: (line: string) => void }): Promise<AuthorizeResult> {
  const clientSecret = cfg.clientSecret === undefined ? undefined : await readSecret(cfg.clientSecret, 'OAuth2 client secret');
  await checkTokenFile(cfg.file);
  const client = {
    tokenUrl: cfg.tokenUrl,
    clientId: cfg.clientId,
    scope: cfg.scope,
    signal: deps.signal,
    say: deps.say,
    ...(clientSecret === undefined ? {} : { clientSecret }),
  };
  const token =
    cfg.flow === 'device'
      ? await deviceFlow({ ...client, deviceUrl: cfg.deviceUrl ?? '' })
      : await codeFlow({
          ...client,
          authUrl: cfg.authUrl ?? '',
          waitMs: cfg.waitMs,
          ...(cfg.user === undefined ? {} : { loginHint: cfg.user }),
          ...(cfg.extra === undefined ? {} : { extra: cfg.extra }),
        });
  await storeRefreshToken(cfg.file, token);
  const short = Object.entries(OAUTH2_TOKEN_URLS).find(([, u]) => u === cfg.tokenUrl)?.[0] ?? cfg.tokenUrl;
  const flags = ['--oauth2-token-url', short, '--oauth2-client-id', cfg.clientId, ...(cfg.clientSecretFlag ?? []), '--oauth2-refresh-token-file', cfg.file];
  return { file: cfg.file, flags };
}

/** A word as a POSIX shell reads it back: as is when plain, else in single quotes. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function printAuthorize(r: AuthorizeResult, out: Output): number {
  if (out.json) writeStdout(JSON.stringify({ type: 'authorized', file: r.file, flags: r.flags }));
  else if (!out.quiet) {
    writeStdout(`The refresh token is stored in ${escapeControl(r.file)} (mode 0600). Give mailferry these flags to use it:\n  ${escapeControl(r.flags.map(shellWord).join(' '))}`);
  }
  return 0;
}

export const OAUTH2: Command<AuthorizeConfig, AuthorizeResult> = {
  load: loadAuthorize,
  run: (cfg, deps) => authorize(cfg, { signal: deps.signal, say: (line) => process.stderr.write(`${escapeControl(line)}\n`) }),
  print: printAuthorize,
};
