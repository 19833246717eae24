/**
 * The provider profile: what profiles/*.json hold (data only), checked by hand so that every
 * problem of a file is reported at once, as `field.path: problem` (no schema library: this is
 * small, and `--help` loads none of it). profiles/README.md documents the same fields for people.
 *
 * Sizes are bytes (decimal: Google's "2500 MB" is 2 500 000 000, the conservative reading). A
 * number a provider does not publish is left out, never guessed. A host may contain `{domain}`,
 * replaced by the domain of the user's address (the generic profile: imap.{domain}).
 */
export type ServerTls = 'tls' | 'starttls';
export type FolderRole = 'sent' | 'drafts' | 'trash' | 'junk' | 'archive' | 'all';
export type AuthMethod = 'password' | 'app-password' | 'oauth2';

export const FOLDER_ROLES: readonly FolderRole[] = ['sent', 'drafts', 'trash', 'junk', 'archive', 'all'];
/** The RFC 6154 SPECIAL-USE flag of each role. */
export const ROLE_FLAG: Record<FolderRole, string> = {
  sent: '\\Sent',
  drafts: '\\Drafts',
  trash: '\\Trash',
  junk: '\\Junk',
  archive: '\\Archive',
  all: '\\All',
};
const AUTH_METHODS: readonly AuthMethod[] = ['password', 'app-password', 'oauth2'];
const LIMITS = ['connections', 'serverConnections', 'downloadBytesPerDay', 'uploadBytesPerDay', 'pop3BytesPerDay', 'maxAppendBytes'] as const;

export interface ServerSettings {
  host: string;
  port: number;
  tls: ServerTls;
}

export interface ProfileLimits {
  /** Simultaneous connections per account the provider allows. */
  connections?: number;
  /** Simultaneous connections to one server, all its accounts together (`mailferry batch --jobs` counts them across rows). */
  serverConnections?: number;
  /** IMAP download per UTC day. */
  downloadBytesPerDay?: number;
  /** IMAP APPEND per UTC day. */
  uploadBytesPerDay?: number;
  /** POP3 download per UTC day. */
  pop3BytesPerDay?: number;
  /** Largest message the server accepts by APPEND. */
  maxAppendBytes?: number;
}

export interface Profile {
  name: string;
  description: string;
  /** E-mail domains the profile serves; `hotmail.*` matches any last label(s) after `hotmail.`. */
  domains: string[];
  imap?: ServerSettings;
  pop3?: ServerSettings;
  smtp?: ServerSettings;
  folders: { roles: Partial<Record<FolderRole, string>>; skip: string[] };
  limits: ProfileLimits;
  auth: { methods: AuthMethod[]; oauth2?: { authUrl: string; tokenUrl: string; scope: string } };
  notes: string[];
}

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const HOST = /^(?:[A-Za-z0-9-]+|\{domain\})(?:\.(?:[A-Za-z0-9-]+|\{domain\}))*$/;
const DOMAIN = /^(?:[a-z0-9-]+\.)+(?:[a-z0-9-]+|\*)$/;

/** Check one parsed profile file; returns the profile, or every problem found. */
export function validateProfile(data: Json): { profile: Profile } | { problems: string[] } {
  const problems: string[] = [];
  const bad = (path: string, what: string): void => {
    problems.push(`${path}: ${what}`);
  };
  if (!isObject(data)) return { problems: ['(top level): must be a JSON object'] };

  const known = (obj: Record<string, Json>, path: string, keys: readonly string[]): void => {
    for (const k of Object.keys(obj)) if (!keys.includes(k)) bad(`${path}${k}`, `unknown field (known: ${keys.join(', ')})`);
  };
  const str = (v: Json, path: string, re?: RegExp): string | undefined => {
    if (typeof v !== 'string' || v.trim() === '') return void bad(path, 'must be a non-empty string');
    if (re !== undefined && !re.test(v)) return void bad(path, `"${v}" is not valid here`);
    return v;
  };
  const strings = (v: Json, path: string, re?: RegExp): string[] => {
    if (!Array.isArray(v)) return bad(path, 'must be an array of strings'), [];
    return v.map((x, i) => str(x, `${path}[${i}]`, re)).filter((x): x is string => x !== undefined);
  };
  const int = (v: Json, path: string, min: number, max: number): number | undefined => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) return void bad(path, `must be an integer from ${min} to ${max}`);
    return v;
  };
  const server = (v: Json, path: string): ServerSettings | undefined => {
    if (v === undefined) return undefined;
    if (!isObject(v)) return void bad(path, 'must be an object {host, port, tls}');
    known(v, `${path}.`, ['host', 'port', 'tls']);
    const host = str(v['host'], `${path}.host`, HOST);
    const port = int(v['port'], `${path}.port`, 1, 65535);
    const tls = v['tls'];
    if (tls !== 'tls' && tls !== 'starttls') bad(`${path}.tls`, 'must be "tls" or "starttls" (plain text is not offered by a profile)');
    return host === undefined || port === undefined ? undefined : { host, port, tls: tls as ServerTls };
  };

  known(data, '', ['name', 'description', 'domains', 'imap', 'pop3', 'smtp', 'folders', 'limits', 'auth', 'notes']);
  const name = str(data['name'], 'name', /^[a-z0-9][a-z0-9.-]*$/);
  const description = str(data['description'], 'description');
  const domains = strings(data['domains'], 'domains', DOMAIN);
  const imap = server(data['imap'], 'imap');
  const pop3 = server(data['pop3'], 'pop3');
  const smtp = server(data['smtp'], 'smtp');
  if (data['imap'] === undefined && data['pop3'] === undefined) bad('imap', 'a profile needs imap or pop3 (or both)');

  const folders: Profile['folders'] = { roles: {}, skip: [] };
  const f = data['folders'] ?? { roles: {}, skip: [] };
  if (!isObject(f)) bad('folders', 'must be an object {roles, skip}');
  else {
    known(f, 'folders.', ['roles', 'skip']);
    const roles = f['roles'] ?? {};
    if (!isObject(roles)) bad('folders.roles', 'must be an object of role: folder name');
    else {
      known(roles, 'folders.roles.', FOLDER_ROLES);
      for (const role of FOLDER_ROLES) {
        if (roles[role] === undefined) continue;
        const v = str(roles[role], `folders.roles.${role}`);
        if (v !== undefined) folders.roles[role] = v;
      }
    }
    folders.skip = strings(f['skip'] ?? [], 'folders.skip');
  }

  const limits: ProfileLimits = {};
  const l = data['limits'] ?? {};
  if (!isObject(l)) bad('limits', 'must be an object');
  else {
    known(l, 'limits.', LIMITS);
    for (const k of LIMITS) {
      if (l[k] === undefined) continue;
      const v = k === 'connections' ? int(l[k], `limits.${k}`, 1, 64) : k === 'serverConnections' ? int(l[k], `limits.${k}`, 1, 10000) : int(l[k], `limits.${k}`, 1, Number.MAX_SAFE_INTEGER);
      if (v !== undefined) limits[k] = v;
    }
  }

  let auth: Profile['auth'] | undefined;
  const a = data['auth'];
  if (!isObject(a)) bad('auth', 'must be an object {methods, oauth2?}');
  else {
    known(a, 'auth.', ['methods', 'oauth2']);
    const methods = strings(a['methods'], 'auth.methods');
    methods.forEach((m, i) => {
      if (!AUTH_METHODS.includes(m as AuthMethod)) bad(`auth.methods[${i}]`, `"${m}" is not one of ${AUTH_METHODS.join(', ')}`);
    });
    if (methods.length === 0) bad('auth.methods', 'must name at least one method');
    auth = { methods: methods as AuthMethod[] };
    const o = a['oauth2'];
    if (o !== undefined) {
      if (!isObject(o)) bad('auth.oauth2', 'must be an object {authUrl, tokenUrl, scope}');
      else {
        known(o, 'auth.oauth2.', ['authUrl', 'tokenUrl', 'scope']);
        const authUrl = str(o['authUrl'], 'auth.oauth2.authUrl', /^https:\/\//);
        const tokenUrl = str(o['tokenUrl'], 'auth.oauth2.tokenUrl', /^https:\/\//);
        const scope = str(o['scope'], 'auth.oauth2.scope');
        if (authUrl !== undefined && tokenUrl !== undefined && scope !== undefined) auth.oauth2 = { authUrl, tokenUrl, scope };
      }
      if (!methods.includes('oauth2')) bad('auth.oauth2', 'given, but "oauth2" is not in auth.methods');
    }
  }
  const notes = data['notes'] === undefined ? [] : strings(data['notes'], 'notes');

  if (problems.length > 0 || name === undefined || description === undefined || auth === undefined) return { problems };
  return {
    profile: {
      name,
      description,
      domains: domains.map((d) => d.toLowerCase()),
      ...(imap === undefined ? {} : { imap }),
      ...(pop3 === undefined ? {} : { pop3 }),
      ...(smtp === undefined ? {} : { smtp }),
      folders,
      limits,
      auth,
      notes,
    },
  };
}
