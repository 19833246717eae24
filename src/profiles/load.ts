import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MailferryError } from '../domain/errors.js';
import type { RemoteEndpoint } from '../endpoints/url.js';
import { validateProfile, type Profile } from './schema.js';

/**
 * Provider profiles: the bundled profiles/*.json (by name or by the domain of an address), or a
 * user's own file (`--profile ./my.json`). Every file is validated when loaded; a broken one is a
 * usage error that lists all its problems. Synchronous: this runs while the config is checked,
 * before any I/O that matters.
 */

/** profiles/ at the package root (this file is dist/src/profiles/load.js once built). */
export const PROFILES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'profiles');

/** The profile used for a domain no profile claims: hosts derived as imap.DOMAIN etc. */
export const GENERIC = 'generic';

export function loadProfileFile(path: string): Profile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new MailferryError('usage', `cannot read profile ${path}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e: unknown) {
    throw new MailferryError('usage', `profile ${path} is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const checked = validateProfile(data);
  if ('problems' in checked) throw new MailferryError('usage', `profile ${path}: ${checked.problems.join('; ')}`);
  return checked.profile;
}

/** Every bundled profile, sorted by name. */
export function loadProfiles(dir = PROFILES_DIR): Profile[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  const profiles = files.map((f) => loadProfileFile(join(dir, f)));
  return profiles.sort((a, b) => a.name.localeCompare(b.name));
}

/** `--profile` as given: a path when it contains a slash or ends in .json, else a bundled name. */
export function findProfile(nameOrPath: string, dir = PROFILES_DIR): Profile {
  if (nameOrPath.includes('/') || nameOrPath.endsWith('.json')) return loadProfileFile(resolve(nameOrPath));
  const all = loadProfiles(dir);
  const found = all.find((p) => p.name === nameOrPath.toLowerCase());
  if (found === undefined) {
    throw new MailferryError('usage', `no profile "${nameOrPath}" (known: ${all.map((p) => p.name).join(', ')}; or a file: --profile ./my.json)`);
  }
  return found;
}

/** The domain of an address (`me@example.org` -> `example.org`), lower-cased; undefined if none. */
export function domainOf(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  const domain = at < 0 ? '' : address.slice(at + 1).trim().toLowerCase();
  return domain === '' ? undefined : domain;
}

/** A domain pattern: exact, or `name.*` for `name.` followed by anything (hotmail.co.uk). */
function matches(pattern: string, domain: string): boolean {
  return pattern.endsWith('.*') ? domain.startsWith(pattern.slice(0, -1)) : pattern === domain;
}

/** The profile that claims the domain (an exact entry beats a `name.*` one), else `generic`. */
export function profileForDomain(profiles: readonly Profile[], domain: string): Profile {
  const d = domain.toLowerCase();
  const exact = profiles.find((p) => p.domains.includes(d));
  const wild = profiles.find((p) => p.domains.some((x) => matches(x, d)));
  const found = exact ?? wild ?? profiles.find((p) => p.name === GENERIC);
  if (found === undefined) throw new MailferryError('internal', 'the generic profile is missing from profiles/');
  return found;
}

/**
 * The profile whose IMAP or POP3 server is `host`:`port` (for `--from imaps://me@imap.gmail.com`),
 * if any. The port counts so that a server on localhost is not taken for Proton Bridge.
 */
export function profileForHost(profiles: readonly Profile[], host: string, port: number): Profile | undefined {
  const h = host.toLowerCase();
  const is = (s: Profile['imap']): boolean => s !== undefined && s.host.toLowerCase() === h && s.port === port;
  return profiles.find((p) => is(p.imap) || is(p.pop3));
}

/** The account to connect to: the profile's server for the protocol, `{domain}` filled in. */
export function endpointFor(profile: Profile, protocol: 'imap' | 'pop3', user: string): RemoteEndpoint {
  const server = profile[protocol];
  if (server === undefined) throw new MailferryError('usage', `profile ${profile.name} has no ${protocol} server; try --protocol ${protocol === 'imap' ? 'pop3' : 'imap'}`);
  let host = server.host;
  if (host.includes('{domain}')) {
    const domain = domainOf(user);
    if (domain === undefined) throw new MailferryError('usage', `profile ${profile.name} needs --user as an e-mail address (the host is ${host})`);
    host = host.replaceAll('{domain}', domain);
  }
  return { kind: protocol, user, host, port: server.port, tls: server.tls };
}
