import type { Problems } from '../domain/problems.js';
import { DEFAULTS } from './defaults.js';

/**
 * `--watch` and its flags (backup, forward): checked with the rest of a command's flags, every
 * problem at once. Durations are a number with a unit, `90s`, `15m`, `1h` (a bare number is
 * seconds). IMAP sources IDLE on INBOX and the `--watch-folders` (one connection each, besides
 * `--connections`, all within the profile's connection cap); other sources are polled every
 * `--watch-interval`.
 */
export interface WatchConfig {
  intervalMs: number;
  heartbeatMs: number;
  /** The folders an IMAP source IDLEs on: INBOX first, then --watch-folders. */
  folders: string[];
}

export interface RawWatchFlags {
  watch?: boolean;
  watchInterval?: string;
  watchFolders?: string[];
  watchHeartbeat?: string;
  verify?: string;
  dryRun?: boolean;
}

export function parseWatch(problems: Problems, raw: RawWatchFlags): WatchConfig | undefined {
  const given = raw.watchInterval !== undefined || raw.watchFolders !== undefined || raw.watchHeartbeat !== undefined;
  if (raw.watch !== true) {
    if (given) problems.push('--watch-interval, --watch-folders and --watch-heartbeat go with --watch');
    return undefined;
  }
  if (raw.verify !== undefined) problems.push('--watch never ends, so --verify would never run: run mailferry verify on its own');
  if (raw.dryRun === true) problems.push('--watch and --dry-run do not go together');
  const intervalMs = duration(problems, '--watch-interval', raw.watchInterval ?? DEFAULTS.watchInterval);
  const heartbeatMs = duration(problems, '--watch-heartbeat', raw.watchHeartbeat ?? DEFAULTS.watchHeartbeat);
  const folders = ['INBOX', ...(raw.watchFolders ?? []).filter((f) => f.toUpperCase() !== 'INBOX')];
  return { intervalMs, heartbeatMs, folders: [...new Set(folders)] };
}

/** `90s`, `15m`, `1h`, `1.5h` or seconds, at least one second; problems added when not. */
function duration(problems: Problems, flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/.exec(text.trim());
  const ms = m === null ? NaN : Number(m[1]) * (m[2] === 'h' ? 3_600_000 : m[2] === 'm' ? 60_000 : 1000);
  if (!Number.isFinite(ms) || ms < 1000) {
    problems.push(`${flag} needs a duration of at least 1 s, e.g. 90s, 15m or 1h, not "${text}"`);
    return 1000;
  }
  return Math.round(ms);
}

/**
 * The connections a pass may use besides the IDLE sessions (one per watched folder, IMAP only),
 * so that both fit in the profile's cap (`cap`): at least one.
 */
export function watchConnections(connections: number, cap: number | undefined, watch: WatchConfig | undefined, kind: string): number {
  if (watch === undefined || cap === undefined || kind === 'pop3') return connections;
  return Math.max(1, Math.min(connections, cap - watch.folders.length));
}
