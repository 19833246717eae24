import { MailferryError } from '../domain/errors.js';
import type { LocalEndpoint, RemoteEndpoint } from '../endpoints/url.js';
import { account, type RawAccountFlags } from './account.js';
import type { AuthSpec } from '../auth/login.js';
import { accountFrom, batchSizes, layoutFlag, localEndpoints, unseenOnlyFlag } from './checks.js';
import { parseFilter, type RawFilterFlags } from './filter.js';
import { parseWatch, watchConnections, type RawWatchFlags, type WatchConfig } from './watch.js';
import type { Problems } from '../domain/problems.js';
import type { MessageFilter } from '../sources/filter.js';
import type { MaildirLayout } from '../drivers/maildir/sink.js';
import { capConnections, profileOAuth2, runLimits, type RawProfileFlags, type RunLimits } from '../profiles/resolve.js';

/**
 * The one loader for `backup`: turns raw flags into a checked BackupConfig, reporting every problem
 * at once (exit 2) before any network or archive I/O.
 */
export interface BackupConfig {
  from: RemoteEndpoint;
  to: LocalEndpoint[];
  auth: AuthSpec;
  ca?: Buffer;
  insecure: boolean;
  connections: number;
  include: string[];
  exclude: string[];
  layout: MaildirLayout;
  batchBytes: number;
  batchMessages: number;
  streamThreshold: number;
  maxMessageSize: number;
  /** POP3 only: remove from the server what every archive holds durably. */
  delete: boolean;
  /**
   * POP3 only, with `delete`: only messages first archived more than this many days ago (in
   * every archive). Undefined or 0: as soon as archived.
   */
  deleteOlderThanDays?: number;
  /** POP3 only: name messages by header hash and size instead of UIDL. */
  noUidl: boolean;
  /** The provider profile's limits and the limit flags (src/profiles/resolve.ts). */
  limits: RunLimits;
  /** --since/--before/--max-size/--unseen-only. */
  filter: MessageFilter;
  /** `--watch`: stay after the run and copy new mail as it comes (pipeline/watch.ts). */
  watch?: WatchConfig;
  /** `--dry-run` (`--check`): log in, list and plan; no lock, nothing written or deleted. */
  dryRun: boolean;
}

export interface RawBackupFlags extends RawAccountFlags, RawProfileFlags, RawFilterFlags, RawWatchFlags {
  from?: string;
  to?: string[];
  include?: string[];
  exclude?: string[];
  layout?: string;
  batchMb?: number;
  maxMessageSize?: string;
  delete?: boolean;
  /** Days as typed (a decimal number); checked here. */
  deleteOlderThan?: string;
  noUidl?: boolean;
  /** `--no-uidl` as yargs reads it: the negation of a (hidden) `--uidl`. */
  uidl?: boolean;
  dryRun?: boolean;
}

export function loadBackupConfig(raw: RawBackupFlags): BackupConfig {
  const problems: Problems = [];

  const { from, prof } = accountFrom(problems, raw, 'backup');
  const imap = from !== undefined && from.kind !== 'pop3';
  if (raw.delete === true && imap) problems.push('--delete is for POP3 sources only');
  let olderThanDays: number | undefined;
  if (raw.deleteOlderThan !== undefined) {
    const text = raw.deleteOlderThan.trim();
    const days = /^\d+(\.\d+)?$|^\.\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isFinite(days)) problems.push(`--delete-older-than needs a number of days (0 or more, e.g. 30 or 0.5), not "${raw.deleteOlderThan}"`);
    else olderThanDays = days;
    if (imap) problems.push('--delete-older-than is for POP3 sources only');
    if (raw.delete === true) problems.push('give --delete or --delete-older-than, not both (--delete-older-than 0 is --delete)');
  }
  const noUidl = raw.noUidl === true || raw.uidl === false;
  if (noUidl && imap) problems.push('--no-uidl is for POP3 sources only');
  const filter = parseFilter(problems, raw);
  unseenOnlyFlag(problems, filter, from?.kind);

  if (raw.to === undefined || raw.to.length === 0) problems.push('--to is required (maildir:DIR or mbox:DIR, may be given twice)');
  const to = localEndpoints(problems, raw.to ?? [], '--to');

  const acct = account(problems, from, { ...raw, oauth2: profileOAuth2(raw.oauth2, prof) }, '');
  const layout = layoutFlag(problems, raw.layout);
  const batch = batchSizes(problems, raw.batchMb, raw.maxMessageSize);
  const watch = parseWatch(problems, raw);

  if (problems.length > 0 || acct === undefined) {
    throw new MailferryError('usage', problems.join('; '));
  }
  const connections = watchConnections(capConnections(acct.connections, prof, '--connections'), prof.connections, watch, acct.endpoint.kind);
  return {
    from: acct.endpoint,
    to,
    auth: acct.auth,
    ...(acct.ca === undefined ? {} : { ca: acct.ca }),
    insecure: acct.insecure,
    connections,
    include: raw.include ?? [],
    exclude: [...(raw.exclude ?? []), ...prof.skip],
    layout,
    ...batch,
    delete: raw.delete === true || olderThanDays !== undefined,
    ...(olderThanDays === undefined ? {} : { deleteOlderThanDays: olderThanDays }),
    noUidl,
    limits: runLimits({ settings: prof, account: acct.endpoint }, undefined),
    filter,
    ...(watch === undefined ? {} : { watch }),
    dryRun: raw.dryRun === true,
  };
}
