import { MailferryError } from '../domain/errors.js';
import { backoffMs, sleep } from '../domain/retry.js';
import type { Logger } from '../log/logger.js';
import { RunReport, type Skipped } from '../report.js';
import type { FolderWatch } from '../sources/source.js';

/**
 * Watch mode (`--watch`): after the normal run, stay and copy new mail as it comes, for days on
 * end. Written once, against two things a command hands in:
 *
 * - `pass(only)`: one normal run through the one pipeline (run.ts), on a fresh Source, into the
 *   Sinks the command holds open for the whole watch (and with them the archive's lock); `only`
 *   names the folders to copy (undefined: every folder the run chooses). So every guarantee of a
 *   run holds for every message of the watch: durable before acknowledged, nothing twice,
 *   reconciled batches, the state current after each commit (a kill -9 at any moment loses nothing).
 * - `folders`, optional: a FolderWatch (sources/source.ts; IMAP IDLE, drivers/imap/idle.ts) that
 *   says which folders may have new mail. A source without one (POP3, an archive) is polled.
 *
 * The schedule: a full pass first (the normal run), then a pass of the folders the watch names as
 * changed as soon as it names them, and a full pass every `intervalMs` for everything else (and for
 * what a watch cannot see). A pass that fails for a transient reason (a lost connection, a refused
 * connection, a server restart, a protocol error: the run's own retries spent) is tried again after
 * a backoff (domain/retry.ts WATCH_BACKOFF, doubling to a cap), for ever; one that ends partial
 * (something skipped) brings the next full pass forward on a backoff that grows up to `intervalMs`.
 * What cannot pass by waiting ends the watch with its exit code: a refused login (4), the archive
 * not writable or a full disk (6), an untrusted certificate (5), a usage error (2).
 *
 * `signal` (SIGTERM, SIGINT) ends the watch within seconds, and where it lands decides how:
 * - in a pass (listing, copying: messages may be listed and not yet archived), the pass stops as
 *   an interrupted run does (what it committed is durable, the rest is the next start's) and the
 *   watch fails as one: `interrupted`, exit 130, whatever the earlier passes copied;
 * - between passes (the wait for IDLE news or the next poll), after at least one complete pass,
 *   the watch returns its report. That report sums what every pass copied; its `skipped` (and so
 *   its exit code) is what is left behind now: the last full pass's skips, each folder's replaced
 *   by that folder's later passes' (a pass of INBOX alone vouches for nothing in Work): 0 only
 *   when nothing is. Before the first
 *   pass was complete it is 130 again, nothing vouched for.
 * A heartbeat is written between passes (passes back to back do not hold it back); `waiting` says
 * whether the watch now waits (true: a signal now ends it with the last pass's code) or starts a
 * pass at once.
 *
 * Memory stays flat: nothing per message is kept across passes (a pass's report is folded into
 * counts, its skipped list replaces the previous one).
 */
export interface WatchLoopOptions {
  /** A full pass every so often (`--watch-interval`). */
  intervalMs: number;
  /** A heartbeat event this often (`--watch-heartbeat`). */
  heartbeatMs: number;
  backoff: { baseMs: number; maxMs: number };
  signal: AbortSignal;
  log: Logger;
  onEvent?: (e: WatchEvent) => void;
}

export type WatchEvent =
  | { type: 'pass'; full: boolean; folders?: readonly string[]; messages: number; bytes: number; skipped: number; seconds: number }
  | { type: 'heartbeat'; time: string; passes: number; messages: number; watched: number; live: number; waiting: boolean; failing?: string };

export type Pass = (only: readonly string[] | undefined) => Promise<RunReport>;

export async function watchLoop(pass: Pass, opts: WatchLoopOptions, folders?: FolderWatch, watched = 0): Promise<RunReport> {
  const total = new RunReport();
  let last: RunReport | undefined;
  /** What is left behind now: the last full pass's skips, each folder's replaced by its later passes'. */
  let outstanding: Skipped[] = [];
  let passes = 0;
  /** Consecutive failed passes, and consecutive partial ones (each its own backoff). */
  let failures = 0;
  let partials = 0;
  let failing: string | undefined;
  let nextFull = Date.now();
  let holdUntil = 0;
  let nextBeat = Date.now() + opts.heartbeatMs;
  const due = new Set<string>();
  const { signal, log } = opts;

  while (!signal.aborted) {
    const now = Date.now();
    const full = now >= nextFull;
    const passNow = now >= holdUntil && (full || due.size > 0);
    if (now >= nextBeat) {
      const waiting = !passNow;
      opts.onEvent?.({ type: 'heartbeat', time: new Date(now).toISOString(), passes, messages: total.messages, watched, live: folders?.live ?? 0, waiting, ...(failing === undefined ? {} : { failing }) });
      log.debug(`watch: alive, ${passes} passes, ${total.messages} messages copied`);
      nextBeat = now + opts.heartbeatMs;
    }
    if (passNow) {
      const only = full ? undefined : [...due].sort();
      const started = Date.now();
      try {
        const r = await pass(only);
        passes++;
        failures = 0;
        failing = undefined;
        if (only === undefined) {
          nextFull = Date.now() + opts.intervalMs;
          due.clear();
        } else {
          for (const f of only) due.delete(f);
        }
        fold(total, r, only === undefined);
        last = r;
        outstanding = only === undefined ? [...r.skipped] : [...outstanding.filter((x) => !only.includes(x.mailbox)), ...r.skipped];
        if (r.skipped.length > 0) nextFull = Math.min(nextFull, Date.now() + backoffMs(partials++, { baseMs: opts.backoff.baseMs, maxMs: opts.intervalMs }));
        else if (only === undefined) partials = 0;
        const seconds = (Date.now() - started) / 1000;
        opts.onEvent?.({ type: 'pass', full: only === undefined, ...(only === undefined ? {} : { folders: only }), messages: r.messages, bytes: r.bytes, skipped: r.skipped.length, seconds });
        if (r.messages > 0 || r.skipped.length > 0) log.info(`watch: ${only === undefined ? 'full pass' : only.join(', ')}: ${r.summary()}`);
      } catch (e: unknown) {
        // Stopped mid-pass: what it listed and did not archive is the next start's, so not 0.
        if (signal.aborted) throw e instanceof MailferryError && e.kind === 'interrupted' ? e : new MailferryError('interrupted', INTERRUPTED, { cause: e });
        if (!transient(e)) throw e;
        const wait = backoffMs(failures++, opts.backoff);
        failing = e.message;
        holdUntil = Date.now() + wait;
        log.warn(`watch: ${e.message}; trying again in ${(wait / 1000).toFixed(0)} s`);
      }
      continue;
    }
    const until = Math.min(nextFull, nextBeat, due.size > 0 ? holdUntil : Infinity);
    const wait = Math.max(0, until - Date.now());
    if (folders === undefined) await sleep(wait, signal);
    else for (const f of await folders.changes(wait, signal)) due.add(f);
  }
  // Stopped before the first pass was complete: as an interrupted run (130), nothing vouched for.
  if (last === undefined) throw new MailferryError('interrupted', 'interrupted before the first pass was complete; the archive is consistent, rerun to resume');
  total.skipped.push(...outstanding);
  total.budgetReached = last.budgetReached;
  total.finished = Date.now();
  return total;
}

const INTERRUPTED = 'interrupted in the middle of a pass; the archive is consistent, rerun to resume';

/** A pass's failure that waiting may cure: a lost or refused connection, a server restarting. */
function transient(e: unknown): e is MailferryError {
  return e instanceof MailferryError && (e.retryable || e.kind === 'network' || e.kind === 'protocol' || e.kind === 'interrupted');
}

/** Add a pass's counts to the watch's; what describes the account now comes from the last full pass. */
function fold(total: RunReport, r: RunReport, full: boolean): void {
  total.source = r.source;
  total.sinks = r.sinks;
  total.messages += r.messages;
  total.bytes += r.bytes;
  total.planned += r.planned;
  total.plannedBytes += r.plannedBytes;
  total.vanished += r.vanished;
  total.held += r.held;
  total.notCopied += r.notCopied;
  total.skippedMessages += r.skippedMessages;
  total.flagUpdates += r.flagUpdates;
  total.deleted += r.deleted;
  total.removed += r.removed;
  if (r.forwarded !== undefined) total.forwarded = (total.forwarded ?? 0) + r.forwarded;
  if (r.markedSent !== undefined) total.markedSent = (total.markedSent ?? 0) + r.markedSent;
  if (full) {
    total.folders = r.folders;
    total.unchanged = r.unchanged;
    total.filtered = r.filtered;
    total.perFolder.clear();
    for (const [k, v] of r.perFolder) total.perFolder.set(k, v);
  }
}
