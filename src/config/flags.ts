import { homedir } from 'node:os';
import { MailferryError } from '../domain/errors.js';

/**
 * The one adapter from parsed arguments to a command's raw flags, for every command. yargs
 * (strict: an undeclared flag is a usage error) has already read the command line and the
 * `--config` job file (job-file.ts turns it into flags), and gives each flag given under its
 * camelCase name (`--batch-mb` as `batchMb`); the command's declaration in cli.ts is the one list
 * of its flags, and its loader's Raw*Flags type the one list of what it reads. So the mapping is
 * by name, with no list per command:
 * - every flag given is copied under its camelCase name; flags not given are left out;
 * - a path a flag takes has its leading `~` or `~/` expanded from $HOME (homePath), since the shell
 *   expands neither after `maildir:` or `=`, nor in a job file: the values of `--*-file`, `--*ca`,
 *   `--state`, `--config`, `--profile`/`--target-profile` (a file), and the archive endpoints
 *   `maildir:~/…`, `mbox:~/…` of `--from`, `--to`, `--archive`;
 * - the OAuth2 flags of one account (`--oauth2-*`, `--target-oauth2-*`, `--smtp-oauth2-*`) are
 *   gathered into one RawOAuth2Flags of auth/config.ts (`oauth2`, `targetOauth2`, `smtpOauth2`),
 *   which checks them together;
 * - yargs' own keys (`_`, `$0`, the kebab-case copies, one-letter aliases) are left out.
 * Values keep the types the declarations give them (string, number, boolean, string[]); the
 * loader checks what they mean and reports every problem at once.
 */
export function rawFlags<T>(args: Readonly<Record<string, unknown>>): T {
  const out: Record<string, unknown> = {};
  for (const [key, given] of Object.entries(args)) {
    if (given === undefined || !/^[a-z][a-zA-Z0-9]+$/.test(key)) continue;
    const value = expandPaths(key, given);
    const oauth2 = /^(?:([a-z][a-zA-Z0-9]*)Oauth2|oauth2)([A-Z][a-zA-Z0-9]*)$/.exec(key);
    if (oauth2 === null) {
      out[key] = value;
      continue;
    }
    const [, prefix = '', rest = ''] = oauth2;
    const group = prefix === '' ? 'oauth2' : `${prefix}Oauth2`;
    const flags = (out[group] ??= {}) as Record<string, unknown>;
    flags[`${rest[0]?.toLowerCase() ?? ''}${rest.slice(1)}`] = value;
  }
  return out as T;
}

/** Flags whose value is a path (camelCase): `--password-file`, `--oauth2-refresh-token-file`, `--target-ca`, ... */
const PATH_FLAG = /(?:File|^ca|Ca|^state|^config|^profile|Profile)$/;
/** Flags whose value is an endpoint, a local archive's path after `maildir:` or `mbox:`. */
const ENDPOINT_FLAG = /^(?:from|to|archive)$/;

function expandPaths(key: string, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v: unknown) => expandPaths(key, v));
  if (typeof value !== 'string') return value;
  if (PATH_FLAG.test(key)) return homePath(value);
  const local = ENDPOINT_FLAG.test(key) ? /^(maildir:|mbox:)(~.*)$/.exec(value) : null;
  return local === null ? value : `${local[1] ?? ''}${homePath(local[2] ?? '')}`;
}

/**
 * `~` and `~/…` from $HOME (os.homedir()); any other path unchanged. `~user/…` is refused as a
 * usage error rather than guessed: its owner's home is not looked up.
 */
export function homePath(path: string): string {
  if (path === '~' || path.startsWith('~/')) return homedir() + path.slice(1);
  if (/^~[^/]/.test(path)) throw new MailferryError('usage', `${path}: "~user" paths are not expanded; write the full path (or ~/… for your own home)`);
  return path;
}
