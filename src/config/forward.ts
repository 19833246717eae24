import { MailferryError } from '../domain/errors.js';
import { parseEndpoint, parseSmtpEndpoint, type LocalEndpoint, type RemoteEndpoint } from '../endpoints/url.js';
import { parseRate, type Rate } from '../drivers/smtp/rate.js';
import type { MaildirLayout } from '../drivers/maildir/sink.js';
import { account, prefixedAccount, trust, type PrefixedAccountFlags, type RawAccountFlags, type RemoteAccount } from './account.js';
import { batchSizes, layoutFlag, localEndpoint, localEndpoints, stateFlag, unseenOnlyFlag } from './checks.js';
import { attempt, type Problems } from '../domain/problems.js';
import type { AuthSpec } from '../auth/login.js';
import { capConnections, profileOAuth2, resolveProfile, runLimits, type ProfileSettings, type RawProfileFlags, type RunLimits } from '../profiles/resolve.js';
import type { MessageFilter } from '../sources/filter.js';
import { parseFilter, type RawFilterFlags } from './filter.js';
import { parseWatch, watchConnections, type RawWatchFlags, type WatchConfig } from './watch.js';
import { RELAY_RETRY } from '../domain/retry.js';

/**
 * The loader for `forward`: a source (IMAP, POP3 or a local archive), an SMTP relay and one
 * recipient. Every problem at once (exit 2), before any I/O (a --ca file aside).
 */
export interface SmtpRelay {
  endpoint: RemoteEndpoint;
  /** Undefined when the address names no user: then no AUTH. */
  auth?: AuthSpec;
  ca?: Buffer;
  insecure: boolean;
}

export interface ForwardConfig {
  /** A mail account, or a local archive (`maildir:DIR`, `mbox:DIR`). */
  source: RemoteAccount | LocalEndpoint;
  smtp: SmtpRelay;
  rcpt: string;
  /** MAIL FROM; '' is the null reverse-path. */
  envelopeFrom: string;
  rate?: Rate;
  archives: LocalEndpoint[];
  layout: MaildirLayout;
  include: string[];
  exclude: string[];
  /** --since/--before/--max-size/--unseen-only (sources/filter.ts). */
  filter: MessageFilter;
  /** The source profile's daily budget and bandwidth, and the limit flags (src/profiles/resolve.ts). */
  limits: RunLimits;
  batchBytes: number;
  batchMessages: number;
  streamThreshold: number;
  maxMessageSize: number;
  statePath?: string;
  /** Print what would be forwarded; send nothing, write nothing, contact no relay. */
  dryRun: boolean;
  /** Record every message this run would forward as already sent, without sending it (nor contacting the relay). */
  markSent: boolean;
  /** Attempts per message when the relay answers 4xx, and the first delay between them. */
  retries: number;
  retryBaseMs: number;
  /** `--watch`: stay after the run and forward new mail as it comes (pipeline/watch.ts). */
  watch?: WatchConfig;
}

export interface RawForwardFlags extends RawAccountFlags, PrefixedAccountFlags<'smtp'>, RawFilterFlags, RawProfileFlags, RawWatchFlags {
  from?: string;
  smtp?: string;
  rcpt?: string;
  envelopeFrom?: string;
  rate?: string;
  archive?: string[];
  layout?: string;
  include?: string[];
  exclude?: string[];
  batchMb?: number;
  maxMessageSize?: string;
  state?: string;
  dryRun?: boolean;
  markSent?: boolean;
}

/** A plain `local@domain` address, as MAIL FROM / RCPT TO take it (no display name, no brackets). */
const ADDRESS = /^[^\s<>@"]+@[^\s<>@]+$/;

export function loadForwardConfig(raw: RawForwardFlags): ForwardConfig {
  const problems: Problems = [];
  const { source, prof } = forwardSource(problems, raw);

  const smtp = relay(problems, raw);
  if (raw.rcpt === undefined) problems.push('--rcpt ADDRESS is required (where the messages go)');
  else if (!ADDRESS.test(raw.rcpt)) problems.push(`--rcpt must be a plain address such as me@example.org, not "${raw.rcpt}"`);
  let envelopeFrom: string | undefined;
  if (raw.envelopeFrom !== undefined) {
    envelopeFrom = raw.envelopeFrom === '<>' || raw.envelopeFrom === '' ? '' : raw.envelopeFrom;
    if (envelopeFrom !== '' && !ADDRESS.test(envelopeFrom)) problems.push(`--envelope-from must be a plain address or <>, not "${raw.envelopeFrom}"`);
  } else if (smtp !== undefined && raw.rcpt !== undefined) {
    // Bounces of the forward come back to the user: the relay's login when it is an address, else the recipient.
    envelopeFrom = ADDRESS.test(smtp.endpoint.user) ? smtp.endpoint.user : raw.rcpt;
  }
  const filter = parseFilter(problems, raw);
  unseenOnlyFlag(problems, filter, source !== undefined && 'endpoint' in source ? source.endpoint.kind : undefined);
  const rate = raw.rate === undefined ? undefined : attempt(problems, () => parseRate(raw.rate as string));

  const local = source !== undefined && 'path' in source ? source.path : undefined;
  const archives = localEndpoints(problems, raw.archive ?? [], '--archive', local, 'is given twice (or is the source)');
  const layout = layoutFlag(problems, raw.layout);
  const batch = batchSizes(problems, raw.batchMb, raw.maxMessageSize);
  const state = stateFlag(problems, raw.state);
  if (raw.markSent === true && raw.dryRun === true) problems.push('--mark-sent and --dry-run do not go together (--dry-run shows what --mark-sent would record)');
  const watch = parseWatch(problems, raw);
  if (watch !== undefined && raw.markSent === true) problems.push('--watch and --mark-sent do not go together (--mark-sent records what is there now, once)');

  if (problems.length > 0 || source === undefined || smtp === undefined || raw.rcpt === undefined || envelopeFrom === undefined) {
    throw new MailferryError('usage', problems.join('; '));
  }
  if (watch !== undefined && 'endpoint' in source) source.connections = watchConnections(source.connections, prof?.connections, watch, source.endpoint.kind);
  return {
    source,
    smtp,
    rcpt: raw.rcpt,
    envelopeFrom,
    ...(rate === undefined ? {} : { rate }),
    archives,
    layout,
    include: raw.include ?? [],
    exclude: [...(raw.exclude ?? []), ...(prof?.skip ?? [])],
    filter,
    limits: prof === undefined || 'path' in source ? runLimits(undefined, undefined) : runLimits({ settings: prof, account: source.endpoint }, undefined),
    dryRun: raw.dryRun ?? false,
    markSent: raw.markSent ?? false,
    ...batch,
    ...state,
    retries: RELAY_RETRY.attempts,
    retryBaseMs: RELAY_RETRY.baseMs,
    ...(watch === undefined ? {} : { watch }),
  };
}

/**
 * The source: a local archive, or a mail account by URL or by `--user ADDRESS` with its provider
 * profile (as for backup: server, connection cap, skipped folders, daily budget, OAuth2 endpoint).
 */
function forwardSource(problems: Problems, raw: RawForwardFlags): { source?: RemoteAccount | LocalEndpoint; prof?: ProfileSettings } {
  let url: RemoteEndpoint | undefined;
  if (raw.from === undefined) {
    if (raw.user === undefined) problems.push('--from is required (pop3s://USER@HOST, imaps://USER@HOST, maildir:DIR or mbox:DIR), or --user ADDRESS to use a provider profile');
  } else {
    const e = attempt(problems, () => parseEndpoint(raw.from as string));
    if (e !== undefined && 'path' in e) {
      const profileFlags = [raw.user, raw.profile, raw.protocol, raw.allFolders, raw.maxBytesPerDay].some((v) => v !== undefined);
      if (profileFlags) problems.push('--user, --profile, --protocol, --all-folders and --max-bytes-per-day are for mail accounts, not archives');
      const local = localEndpoint(problems, raw.from, '--from');
      return local === undefined ? {} : { source: local };
    }
    url = e;
  }
  const prof = resolveProfile(problems, raw, url);
  const acct = account(problems, url ?? prof.endpoint, { ...raw, oauth2: profileOAuth2(raw.oauth2, prof) }, '');
  if (acct === undefined) return { prof };
  return { source: { ...acct, connections: capConnections(acct.connections, prof, '--connections') }, prof };
}

/** `--smtp` with its password source (only with a user in the address) and TLS flags. */
function relay(problems: Problems, raw: RawForwardFlags): SmtpRelay | undefined {
  let endpoint: RemoteEndpoint | undefined;
  if (raw.smtp === undefined) problems.push('--smtp is required (smtps://[USER@]HOST[:465] or smtp://[USER@]HOST[:587])');
  else endpoint = attempt(problems, () => parseSmtpEndpoint(raw.smtp as string));
  const flags = prefixedAccount(raw, 'smtp');
  if (endpoint !== undefined && endpoint.user === '') {
    const oauth2 = flags.oauth2 !== undefined && Object.values(flags.oauth2).some((v) => v !== undefined);
    if (flags.passwordEnv !== undefined || flags.passwordFile !== undefined || flags.passwordCommand !== undefined || oauth2) {
      problems.push('an --smtp-password-* or --smtp-oauth2-* flag needs a user in the --smtp address (smtps://USER@HOST); without one, no AUTH is sent');
    }
    const t = trust(problems, endpoint, flags, 'smtp-');
    return t.endpoint === undefined ? undefined : { endpoint: t.endpoint, ...(t.ca === undefined ? {} : { ca: t.ca }), insecure: t.insecure };
  }
  const a = account(problems, endpoint, flags, 'smtp-');
  return a === undefined ? undefined : { endpoint: a.endpoint, auth: a.auth, ...(a.ca === undefined ? {} : { ca: a.ca }), insecure: a.insecure };
}
