import { MailferryError } from '../domain/errors.js';
import { parseEndpoint, type LocalEndpoint, type RemoteEndpoint } from '../endpoints/url.js';
import { account, prefixedAccount, type PrefixedAccountFlags, type RawAccountFlags, type RemoteAccount } from './account.js';
import { batchSizes, layoutFlag, localEndpoint, localEndpoints, stateFlag, unseenOnlyFlag } from './checks.js';
import { attempt, type Problems } from '../domain/problems.js';
import { parseMapRule, type MapRule } from '../drivers/imap/folder-map.js';
import type { MaildirLayout } from '../drivers/maildir/sink.js';
import { capConnections, profileOAuth2, resolveProfile, resolveTarget, runLimits, type RunLimits } from '../profiles/resolve.js';
import type { FolderRole } from '../profiles/schema.js';
import type { MessageFilter } from '../sources/filter.js';
import { filterFlagsGiven, parseFilter, type RawFilterFlags } from './filter.js';
import { parseWatch, watchConnections, type RawWatchFlags, type WatchConfig } from './watch.js';

/**
 * The loaders for `restore` (a local archive into an IMAP account) and `migrate` (one IMAP account
 * into another, optionally keeping local archives in the same pass). Like loadBackupConfig, each
 * turns raw flags into a checked config and reports every problem at once (exit 2) before any
 * network or file I/O (reading a --ca file aside: its absence is one of the problems).
 */

export interface TransferCommon {
  /** The IMAP account that receives the messages (APPEND). */
  target: RemoteAccount;
  include: string[];
  exclude: string[];
  batchBytes: number;
  batchMessages: number;
  streamThreshold: number;
  maxMessageSize: number;
  /** Print what would be copied; change nothing. */
  dryRun: boolean;
  /** `--map OLD=NEW` rules ("/"-separated paths), applied before the special-use role mapping. */
  map: MapRule[];
  /** --since/--before/--max-size/--unseen-only. */
  filter: MessageFilter;
  /** `--state FILE`, absolute; else the default under the state directory (see commands/target.ts). */
  statePath?: string;
  /** Provider profiles' limits and the limit flags (src/profiles/resolve.ts). */
  limits: RunLimits;
  /** `--sync-deletions`: remove from the target what mailferry put there and the source no longer has. */
  syncDeletions: boolean;
  /** The target's provider profile's folder roles (`folders.roles`), for a target that flags none. */
  targetRoles: Partial<Record<FolderRole, string>>;
}

export interface RestoreConfig extends TransferCommon {
  from: LocalEndpoint;
  /** Layout of a Maildir archive being read. */
  layout: MaildirLayout;
  /** A Gmail-mode archive's labels on a target that is not Gmail (as MigrateConfig.labels; `folders`: the archive's folders as they are). */
  labels: LabelsMode;
}

export interface MigrateConfig extends TransferCommon {
  /** `--watch`: stay after the run and copy new mail as it comes (pipeline/watch.ts). */
  watch?: WatchConfig;
  source: RemoteAccount;
  /** The source profile's folder roles (`folders.roles`), for folders the server gives no special-use flag. */
  sourceRoles: Partial<Record<FolderRole, string>>;
  /** Local archives written in the same pass (`--archive`). */
  archives: LocalEndpoint[];
  /** Layout of the Maildir archives written. */
  layout: MaildirLayout;
  /**
   * A Gmail source's labels on the target: `folders` (each label a folder holding a copy of its
   * messages, as Gmail's own IMAP shows them) or `keywords` (Gmail mode: each message once, in its
   * most specific label's folder, the others as keywords: sources/label-homes.ts).
   */
  labels: LabelsMode;
}

export type LabelsMode = 'folders' | 'keywords';

interface RawCommonFlags extends RawFilterFlags {
  /** restore: the target account by address/profile; migrate: the source's. */
  user?: string;
  profile?: string;
  maxBytesPerDay?: string;
  maxBytesPerSecond?: string;
  include?: string[];
  exclude?: string[];
  layout?: string;
  batchMb?: number;
  maxMessageSize?: string;
  dryRun?: boolean;
  state?: string;
  map?: string[];
  syncDeletions?: boolean;
}

export interface RawRestoreFlags extends RawAccountFlags, RawCommonFlags {
  from?: string;
  to?: string;
  labels?: string;
}

export interface RawMigrateFlags extends RawAccountFlags, PrefixedAccountFlags<'target'>, RawCommonFlags, RawWatchFlags {
  from?: string;
  to?: string;
  targetUser?: string;
  targetProfile?: string;
  allFolders?: boolean;
  archive?: string[];
  labels?: string;
}

/** `--labels`: folders (the default) or keywords. */
function labelsMode(problems: Problems, raw: string | undefined): LabelsMode {
  const labels: LabelsMode = raw === 'keywords' ? 'keywords' : 'folders';
  if (raw !== undefined && raw !== labels) problems.push(`--labels ${raw}: folders or keywords`);
  return labels;
}

/** An imap:// or imaps:// address (or, with `pop3`, a pop3:// or pop3s:// one: a migrate source). */
function imapEndpoint(problems: Problems, text: string | undefined, flag: string, role: string, pop3 = false): RemoteEndpoint | undefined {
  if (text === undefined) {
    problems.push(`${flag} is required (${role}: imaps://USER@HOST or imap://USER@HOST)`);
    return undefined;
  }
  const e = attempt(problems, () => parseEndpoint(text));
  if (e === undefined) return undefined;
  if ('path' in e || (e.kind !== 'imap' && !(pop3 && e.kind === 'pop3'))) {
    problems.push(`${flag} must be an IMAP account${pop3 ? ' or a POP3 one' : ''} (${role}: imaps://USER@HOST or imap://USER@HOST${pop3 ? ', pop3s:// or pop3://' : ''})`);
    return undefined;
  }
  return e;
}

function common(problems: Problems, raw: RawCommonFlags): Omit<TransferCommon, 'target' | 'limits' | 'targetRoles'> & { layout: MaildirLayout } {
  const filter = parseFilter(problems, raw);
  const syncDeletions = raw.syncDeletions ?? false;
  // A message a filter leaves out is not listed, so it would look deleted on the source.
  if (syncDeletions) for (const flag of filterFlagsGiven(raw)) problems.push(`--sync-deletions cannot be combined with ${flag} (a message it leaves out would look deleted)`);
  const layout = layoutFlag(problems, raw.layout);
  const batch = batchSizes(problems, raw.batchMb, raw.maxMessageSize);
  const state = stateFlag(problems, raw.state);
  const map: MapRule[] = [];
  for (const text of raw.map ?? []) {
    const rule = attempt(problems, () => parseMapRule(text));
    if (rule === undefined) continue;
    if (map.some((r) => r.from === rule.from)) problems.push(`--map ${rule.from}=...: given twice`);
    else map.push(rule);
  }
  return {
    map,
    filter,
    syncDeletions,
    include: raw.include ?? [],
    exclude: raw.exclude ?? [],
    layout,
    ...batch,
    dryRun: raw.dryRun ?? false,
    ...state,
  };
}

export function loadRestoreConfig(raw: RawRestoreFlags): RestoreConfig {
  const problems: Problems = [];
  let from: LocalEndpoint | undefined;
  if (raw.from === undefined) problems.push('--from is required (the archive: maildir:DIR or mbox:DIR)');
  else from = localEndpoint(problems, raw.from, '--from');
  const to = raw.to === undefined && raw.user !== undefined ? undefined : imapEndpoint(problems, raw.to, '--to', 'the account to restore into');
  const tp = resolveTarget(problems, raw, to, { user: '--user', profile: '--profile' });
  const target = account(problems, to ?? tp.endpoint, { ...raw, oauth2: profileOAuth2(raw.oauth2, tp) }, '');
  const rest = common(problems, raw);
  // An mbox message's id is its offset: removing one message from the file changes the ids of all after it.
  if (rest.syncDeletions && from?.kind === 'mbox') problems.push('--sync-deletions needs a Maildir archive: in an mbox file a deleted message changes the ids of every later one');
  const labels = labelsMode(problems, raw.labels);
  if (problems.length > 0 || from === undefined || target === undefined) throw new MailferryError('usage', problems.join('; '));
  const connections = capConnections(target.connections, tp, '--connections');
  return { ...rest, from, labels, target: { ...target, connections }, targetRoles: tp.profile?.folders.roles ?? {}, limits: runLimits(undefined, { settings: tp, account: target.endpoint }) };
}

export function loadMigrateConfig(raw: RawMigrateFlags): MigrateConfig {
  const problems: Problems = [];
  const from = raw.from === undefined && raw.user !== undefined ? undefined : imapEndpoint(problems, raw.from, '--from', 'the account to copy', true);
  const sp = resolveProfile(problems, raw, from);
  const source = account(problems, from ?? sp.endpoint, { ...raw, oauth2: profileOAuth2(raw.oauth2, sp) }, '');
  const to = raw.to === undefined && raw.targetUser !== undefined ? undefined : imapEndpoint(problems, raw.to, '--to', 'the account to copy into');
  const tp = resolveTarget(problems, { to: raw.to, user: raw.targetUser, profile: raw.targetProfile }, to, { user: '--target-user', profile: '--target-profile' });
  const target = account(
    problems,
    to ?? tp.endpoint,
    { ...prefixedAccount(raw, 'target'), oauth2: profileOAuth2(raw.targetOauth2, tp) },
    'target-',
  );
  if (
    source !== undefined &&
    target !== undefined &&
    source.endpoint.host.toLowerCase() === target.endpoint.host.toLowerCase() &&
    source.endpoint.port === target.endpoint.port &&
    source.endpoint.user === target.endpoint.user
  ) {
    problems.push('--from and --to name the same account');
  }
  const archives = localEndpoints(problems, raw.archive ?? [], '--archive');
  const rest = common(problems, raw);
  unseenOnlyFlag(problems, rest.filter, source?.endpoint.kind);
  const watch = parseWatch(problems, raw);
  const labels = labelsMode(problems, raw.labels);
  if (problems.length > 0 || source === undefined || target === undefined) throw new MailferryError('usage', problems.join('; '));
  return {
    ...(watch === undefined ? {} : { watch }),
    ...rest,
    labels,
    exclude: [...rest.exclude, ...sp.skip],
    source: { ...source, connections: watchConnections(capConnections(source.connections, sp, '--connections'), sp.connections, watch, source.endpoint.kind) },
    sourceRoles: sp.profile?.folders.roles ?? {},
    target: { ...target, connections: capConnections(target.connections, tp, '--target-connections') },
    targetRoles: tp.profile?.folders.roles ?? {},
    archives,
    limits: runLimits({ settings: sp, account: source.endpoint }, { settings: tp, account: target.endpoint }),
  };
}
