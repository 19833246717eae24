import { attempt, type Problems } from '../domain/problems.js';
import type { RawOAuth2Flags } from '../auth/config.js';
import type { RemoteEndpoint } from '../endpoints/url.js';
import { parseBytes } from './bytes.js';
import { domainOf, endpointFor, findProfile, GENERIC, loadProfiles, profileForDomain, profileForHost } from './load.js';
import type { Profile } from './schema.js';

/**
 * What a profile means for one run, from the flags. For an account to read from (backup, the
 * source of migrate):
 * - `--profile NAME|FILE --user ADDRESS`: that profile's server for `--protocol` (imap by default);
 * - `--user ADDRESS` alone: the profile that claims the address's domain, else `generic`
 *   (imap.DOMAIN, pop.DOMAIN: a guess, said in the log; the certificate is verified anyway);
 * - `--from URL` wins for the server; its limits come from `--profile` if given, else from the
 *   profile whose server is the URL's host and port (imap.gmail.com:993 -> gmail), else none.
 * The limits in force: connections capped to the profile's; the daily download budget is the
 * profile's (IMAP or POP3) unless `--max-bytes-per-day` says otherwise (0: none);
 * `--max-bytes-per-second` on top. Folders the profile skips (they repeat others: Gmail's All
 * Mail) are excluded unless `--all-folders`.
 * An account to write to (restore, the target of migrate) is chosen the same way, and brings its
 * connection cap and its daily upload budget (Gmail: 500 MB).
 */
export interface RawProfileFlags {
  from?: string;
  profile?: string;
  user?: string;
  protocol?: string;
  allFolders?: boolean;
  maxBytesPerDay?: string;
  maxBytesPerSecond?: string;
}

/** A daily budget on one account: what is counted, and how much a UTC day allows. */
export interface DailyLimit {
  account: RemoteEndpoint;
  kind: 'download' | 'upload';
  bytes: number;
}

export interface ProfileSettings {
  profile?: Profile;
  /** Set when the account comes from the profile (no URL given). */
  endpoint?: RemoteEndpoint;
  /** Exclude patterns the profile adds (empty with --all-folders). */
  skip: string[];
  connections?: number;
  /** The daily budget, download for a source, upload for a target. */
  bytesPerDay?: number;
  bytesPerSecond?: number;
  /** Things to tell the user in the log (a guessed host, a capped connection count). */
  notes: string[];
}

/** The flags that name one account, and how they are spelled for it (for the messages). */
interface Choice {
  url?: string;
  user?: string;
  profile?: string;
  protocol?: string;
  names: { url: string; user: string; profile: string };
}

function pick(problems: Problems, c: Choice, parsed: RemoteEndpoint | undefined): ProfileSettings {
  const out: ProfileSettings = { skip: [], notes: [] };
  const { url, user, profile } = c.names;
  const protocol = c.protocol ?? 'imap';
  if (protocol !== 'imap' && protocol !== 'pop3') problems.push('--protocol must be imap or pop3');
  if (c.url !== undefined) {
    if (c.user !== undefined) problems.push(`give ${url} URL or ${user} ADDRESS, not both (the address goes in the URL: imaps://ADDRESS@HOST)`);
    if (c.protocol !== undefined) problems.push(`--protocol goes with ${user}; ${url} names the protocol itself (imaps://, pop3s://)`);
  } else if (c.profile !== undefined && c.user === undefined) {
    problems.push(`${profile} needs ${user} ADDRESS (or ${url} URL)`);
  }

  if (c.profile !== undefined) out.profile = attempt(problems, () => findProfile(c.profile as string));
  else if (c.url === undefined && c.user !== undefined) {
    const domain = domainOf(c.user);
    if (domain === undefined) problems.push(`${user} ${c.user}: an e-mail address is needed to find the provider (or name one with ${profile})`);
    else {
      out.profile = attempt(problems, () => profileForDomain(loadProfiles(), domain));
      if (out.profile?.name === GENERIC) {
        out.notes.push(`no profile knows ${domain}; trying the usual host names (imap.${domain}, pop.${domain}); ${profile} or ${url} if they are wrong`);
      }
    }
  } else if (parsed !== undefined) out.profile = attempt(problems, () => profileForHost(loadProfiles(), parsed.host, parsed.port));

  const p = out.profile;
  if (c.url === undefined && c.user !== undefined && p !== undefined && (protocol === 'imap' || protocol === 'pop3')) {
    const ep = attempt(problems, () => endpointFor(p, protocol, c.user as string));
    if (ep !== undefined) out.endpoint = ep;
  }
  if (p?.limits.connections !== undefined) out.connections = p.limits.connections;
  return out;
}

function bytesFlag(problems: Problems, text: string | undefined, flag: string, min: number, example: string): number | undefined {
  if (text === undefined) return undefined;
  const n = parseBytes(text);
  if (n === undefined || (n !== 0 && n < min)) {
    problems.push(`${flag} needs a size such as ${example}, not "${text}"`);
    return undefined;
  }
  return n;
}

/** The account read from (backup, migrate's source): server, connections, skipped folders, download limits. */
export function resolveProfile(problems: Problems, raw: RawProfileFlags, from: RemoteEndpoint | undefined): ProfileSettings {
  const out = pick(problems, { ...raw, url: raw.from, names: { url: '--from', user: '--user', profile: '--profile' } }, from);
  const p = out.profile;
  const kind = from?.kind ?? out.endpoint?.kind ?? 'imap';
  if (p !== undefined) {
    const daily = kind === 'pop3' ? p.limits.pop3BytesPerDay : p.limits.downloadBytesPerDay;
    if (daily !== undefined) out.bytesPerDay = daily;
    if (raw.allFolders !== true) out.skip = [...p.folders.skip];
  }
  limitFlags(problems, raw, out);
  return out;
}

/** `--max-bytes-per-day` (0: none) and `--max-bytes-per-second` over what the profile says. */
function limitFlags(problems: Problems, raw: RawProfileFlags, out: ProfileSettings): void {
  const day = bytesFlag(problems, raw.maxBytesPerDay, '--max-bytes-per-day', 1, '2500MB or 1G (0: no daily budget)');
  if (day === 0) delete out.bytesPerDay;
  else if (day !== undefined) out.bytesPerDay = day;
  const second = bytesFlag(problems, raw.maxBytesPerSecond, '--max-bytes-per-second', 1024, '500k or 2M (at least 1KiB)');
  if (second === 0) problems.push('--max-bytes-per-second must be more than 0');
  else if (second !== undefined) out.bytesPerSecond = second;
}

/**
 * The account written to (restore's `--to`/`--user`/`--profile`, migrate's
 * `--to`/`--target-user`/`--target-profile`): server, connection cap, daily upload budget. For
 * restore, `--max-bytes-per-day` and `--max-bytes-per-second` are about this account (`raw` has
 * them); migrate passes none here (its flags are about the source).
 */
export function resolveTarget(
  problems: Problems,
  raw: Pick<RawProfileFlags, 'user' | 'profile' | 'maxBytesPerDay' | 'maxBytesPerSecond'> & { to?: string },
  to: RemoteEndpoint | undefined,
  names: { user: string; profile: string },
): ProfileSettings {
  const out = pick(problems, { ...raw, url: raw.to, names: { url: '--to', ...names } }, to);
  if (out.profile?.limits.uploadBytesPerDay !== undefined) out.bytesPerDay = out.profile.limits.uploadBytesPerDay;
  limitFlags(problems, raw, out);
  return out;
}

/** The connection count asked for, capped to the profile's (with a note saying so). */
export function capConnections(asked: number, s: ProfileSettings, flag: string): number {
  if (s.connections === undefined || asked <= s.connections) return asked;
  s.notes.push(`${flag} ${asked} is more than ${s.profile?.name ?? 'the profile'} allows; using ${s.connections}`);
  return s.connections;
}

/** Everything a command does about limits, from both accounts' settings (see commands/limits.ts). */
export interface RunLimits {
  /** Profile names in force, for the log. */
  profiles: string[];
  budgets: DailyLimit[];
  bytesPerSecond?: number;
  /** Folders left out because a profile skips them (already in `exclude`), for the log. */
  skip: string[];
  notes: string[];
  /** Per server host: how its provider wants to be signed in to, added to a refused login. */
  signIn: { host: string; hint: string }[];
  /** The largest message the target's provider accepts by APPEND (its profile's `limits.maxAppendBytes`). */
  maxAppendBytes?: number;
}

const METHOD: Record<string, string> = { 'app-password': 'an app password', oauth2: 'OAuth2', password: 'the account password' };

/** For a provider that takes no plain password: what it takes instead. */
function signInHint(p: Profile): string | undefined {
  if (p.auth.methods.includes('password')) return undefined;
  return `${p.name} takes ${p.auth.methods.map((m) => METHOD[m] ?? m).join(' or ')}, not the account's own password; see mailferry profiles`;
}

/** Combine the settings of the account read (`source`) and the one written (`target`), once endpoints are known. */
export function runLimits(
  source: { settings: ProfileSettings; account: RemoteEndpoint } | undefined,
  target: { settings: ProfileSettings; account: RemoteEndpoint } | undefined,
): RunLimits {
  const out: RunLimits = { profiles: [], budgets: [], skip: [], notes: [], signIn: [] };
  for (const [side, kind] of [[source, 'download'], [target, 'upload']] as const) {
    if (side === undefined) continue;
    const s = side.settings;
    if (s.profile !== undefined) {
      out.profiles.push(s.profile.name);
      const hint = signInHint(s.profile);
      if (hint !== undefined) out.signIn.push({ host: side.account.host, hint });
    }
    if (s.bytesPerDay !== undefined) out.budgets.push({ account: side.account, kind, bytes: s.bytesPerDay });
    const maxAppend = s.profile?.limits.maxAppendBytes;
    if (kind === 'upload' && maxAppend !== undefined) out.maxAppendBytes = maxAppend;
    if (s.bytesPerSecond !== undefined) out.bytesPerSecond = Math.min(out.bytesPerSecond ?? Infinity, s.bytesPerSecond);
    out.skip.push(...s.skip);
    out.notes.push(...s.notes);
  }
  return out;
}

/**
 * The OAuth2 refresh flow's token endpoint from the account's profile (`auth.oauth2.tokenUrl`)
 * when the flags start the flow (a client id, a refresh token) without `--oauth2-token-url`.
 */
export function profileOAuth2(raw: RawOAuth2Flags | undefined, s: ProfileSettings): RawOAuth2Flags | undefined {
  const url = s.profile?.auth.oauth2?.tokenUrl;
  if (raw === undefined || url === undefined || raw.tokenUrl !== undefined || raw.tokenCommand !== undefined) return raw;
  return Object.values(raw).some((v) => v !== undefined) ? { ...raw, tokenUrl: url } : raw;
}
