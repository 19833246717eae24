import { attempt, type Problems } from '../config/account.js';
import type { RemoteEndpoint } from '../endpoints/url.js';
import { parseBytes } from './bytes.js';
import { domainOf, endpointFor, findProfile, GENERIC, loadProfiles, profileForDomain, profileForHost } from './load.js';
import type { Profile } from './schema.js';

/**
 * What a profile means for one backup run, from the flags:
 * - `--profile NAME|FILE --user ADDRESS`: that profile's server for `--protocol` (imap by default);
 * - `--user ADDRESS` alone: the profile that claims the address's domain, else `generic`
 *   (imap.DOMAIN, pop.DOMAIN: a guess, said in the log; the certificate is verified anyway);
 * - `--from URL` wins for the server; its limits come from `--profile` if given, else from the
 *   profile whose server is the URL's host (imap.gmail.com -> gmail), else none.
 * The limits in force: connections capped to the profile's; the daily budget is the profile's
 * download (IMAP) or POP3 limit unless `--max-bytes-per-day` says otherwise (0: none);
 * `--max-bytes-per-second` on top. Folders the profile skips (they repeat others: Gmail's All
 * Mail) are excluded unless `--all-folders`.
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

export interface ProfileSettings {
  profile?: Profile;
  /** Set when the account comes from the profile (no --from). */
  endpoint?: RemoteEndpoint;
  /** Exclude patterns the profile adds (empty with --all-folders). */
  skip: string[];
  connections?: number;
  bytesPerDay?: number;
  bytesPerSecond?: number;
  /** Things to tell the user in the log (a guessed host, a capped connection count). */
  notes: string[];
}

export function resolveProfile(problems: Problems, raw: RawProfileFlags, from: RemoteEndpoint | undefined): ProfileSettings {
  const out: ProfileSettings = { skip: [], notes: [] };
  const guard = <T>(fn: () => T): T | undefined => attempt(problems, fn);
  const protocol = raw.protocol ?? 'imap';
  if (protocol !== 'imap' && protocol !== 'pop3') problems.push('--protocol must be imap or pop3');
  if (raw.from !== undefined) {
    if (raw.user !== undefined) problems.push('give --from URL or --user ADDRESS, not both (the address goes in the URL: imaps://ADDRESS@HOST)');
    if (raw.protocol !== undefined) problems.push('--protocol goes with --user; --from names the protocol itself (imaps://, pop3s://)');
  } else if (raw.profile !== undefined && raw.user === undefined) {
    problems.push('--profile needs --user ADDRESS (or --from URL)');
  }

  if (raw.profile !== undefined) out.profile = guard(() => findProfile(raw.profile as string));
  else if (raw.from === undefined && raw.user !== undefined) {
    const domain = domainOf(raw.user);
    if (domain === undefined) problems.push(`--user ${raw.user}: an e-mail address is needed to find the provider (or name one with --profile)`);
    else {
      out.profile = guard(() => profileForDomain(loadProfiles(), domain));
      if (out.profile?.name === GENERIC) out.notes.push(`no profile knows ${domain}; trying the usual host names (imap.${domain}, pop.${domain}); --profile or --from if they are wrong`);
    }
  } else if (from !== undefined) out.profile = guard(() => profileForHost(loadProfiles(), from.host, from.port));

  const p = out.profile;
  if (raw.from === undefined && raw.user !== undefined && p !== undefined && (protocol === 'imap' || protocol === 'pop3')) {
    const ep = guard(() => endpointFor(p, protocol, raw.user as string));
    if (ep !== undefined) out.endpoint = ep;
  }
  const kind = from?.kind ?? out.endpoint?.kind ?? 'imap';
  if (p !== undefined) {
    if (p.limits.connections !== undefined) out.connections = p.limits.connections;
    const daily = kind === 'pop3' ? p.limits.pop3BytesPerDay : p.limits.downloadBytesPerDay;
    if (daily !== undefined) out.bytesPerDay = daily;
    if (raw.allFolders !== true) out.skip = [...p.folders.skip];
  }
  if (raw.maxBytesPerDay !== undefined) {
    const n = parseBytes(raw.maxBytesPerDay);
    if (n === undefined) problems.push(`--max-bytes-per-day needs a size such as 2500MB or 1G (0: no daily budget), not "${raw.maxBytesPerDay}"`);
    else if (n === 0) delete out.bytesPerDay;
    else out.bytesPerDay = n;
  }
  if (raw.maxBytesPerSecond !== undefined) {
    const n = parseBytes(raw.maxBytesPerSecond);
    if (n === undefined || n < 1024) problems.push(`--max-bytes-per-second needs a size of at least 1KiB such as 500k or 2M, not "${raw.maxBytesPerSecond}"`);
    else out.bytesPerSecond = n;
  }
  return out;
}
