import { MailferryError } from '../domain/errors.js';
import { profileOAuth2, type RawProfileFlags } from '../profiles/resolve.js';
import { account, type RawAccountFlags } from './account.js';
import type { BackupConfig } from './backup.js';
import { accountFrom } from './checks.js';
import { DEFAULTS } from './defaults.js';
import type { Problems } from '../domain/problems.js';

/**
 * The loader for `mailferry folders`: the account as backup reads it (`--from` or `--user` with
 * its profile), and which folders a backup would leave out and why (the profile's skip list
 * unless --all-folders, the user's --include/--exclude); every problem at once, before any I/O.
 */
export interface FoldersConfig extends Pick<BackupConfig, 'from' | 'auth' | 'ca' | 'insecure' | 'connections' | 'include' | 'exclude' | 'streamThreshold'> {
  /** Patterns the profile skips (empty with --all-folders), and the profile's name. */
  profileSkip: string[];
  profile?: string;
}

export interface RawFoldersFlags extends RawAccountFlags, RawProfileFlags {
  include?: string[];
  exclude?: string[];
}

export function loadFoldersConfig(raw: RawFoldersFlags): FoldersConfig {
  const problems: Problems = [];
  const { from, prof } = accountFrom(problems, raw, 'folders');
  const acct = account(problems, from, { ...raw, oauth2: profileOAuth2(raw.oauth2, prof) }, '');
  if (problems.length > 0 || acct === undefined) throw new MailferryError('usage', problems.join('; '));
  return {
    from: acct.endpoint,
    auth: acct.auth,
    ...(acct.ca === undefined ? {} : { ca: acct.ca }),
    insecure: acct.insecure,
    connections: 1,
    include: raw.include ?? [],
    exclude: raw.exclude ?? [],
    profileSkip: prof.skip,
    ...(prof.profile === undefined ? {} : { profile: prof.profile.name }),
    streamThreshold: DEFAULTS.streamThreshold,
  };
}
