import pLimit from 'p-limit';
import { MailferryError } from '../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import { fingerprintKey, toLf } from '../formats/fingerprint.js';
import type { Logger } from '../log/logger.js';
import { RunReport } from '../report.js';
import type { Match, Sink, SinkFolder } from '../sinks/sink.js';
import type { Source, Unlisted } from '../sources/source.js';
import { toBatches } from './batches.js';
import { closeBooks } from './books.js';
import { copyBatch, ShortBatch, someIds } from './copy.js';
import { Flow } from './flow.js';
import { chooseFolders, includeHint } from './folders.js';
import { withRetry } from '../domain/retry.js';

/**
 * The engine, written once against Source and Sink: plan each folder (what is new for any sink)
 * and run its fetch batches through p-limit: as many plans and fetches at once as the source has
 * connections, and while a batch commits, another one fetches.
 * Folders are planned in order, a few at a time, and a folder is planned only while fewer than
 * PENDING_MESSAGES planned messages wait to be copied (or none do): the plans of a large account
 * are never all in memory at once, so memory does not grow with the number of messages (a `planned`
 * progress event comes as each folder is planned, before its batches).
 * A batch's messages are written to every sink that lacks them, and acknowledged (checkpointed) by
 * each sink's commit only after they are durable. A dropped connection retries the batch; a bad
 * folder is skipped and reported, and so is a message a sink refuses (kind `message`: the rest of
 * the batch goes on); a full target (kind `quota`) ends that sink's part of the batch with what was
 * written committed, and the sink is written no more in this run (what it lacks is reported as not
 * copied to it) while the other sinks go on (`migrate --archive` keeps archiving); once every sink
 * is full, copying stops; a destination, auth, TLS or usage error stops the run.
 * Exit 0 means complete: a folder's plan counts what the listing skipped as already copied only
 * when `wanted` said so, and an id it accepted but the listing left out is asked of the source
 * (`missing`): gone, or retried and at last reported as skipped. Every batch is reconciled the same
 * way (copy.ts); a batch that keeps coming back short ends with its missing messages reported one
 * by one. A batch that fails for a retryable reason keeps what it committed before the failure
 * (copy.ts) and is retried for the rest only; an attempt that made progress starts a fresh round of
 * retries, and one that settled nothing halves what the next attempt asks for (down to one message),
 * so a message that keeps breaking the connection does not take its whole batch with it: alone
 * and still failing once the retries are spent, it is reported as skipped and the batch goes on.
 * At the end the books must balance (books.ts): planned = copied + skipped + vanished +
 * not copied to a full target + held back, else the difference is reported and the run is partial.
 * With `syncDeletions`, a sink folder that can (`removeGone`, an IMAP target) is handed the ids of
 * every message listed in the folder, after a complete listing only (as many listed as `select()`
 * counted, nothing filtered out), and removes what it put there that is gone from the source.
 */
export interface PipelineOptions {
  include: readonly string[];
  exclude: readonly string[];
  batchBytes: number;
  batchMessages: number;
  retries: number;
  retryBaseMs: number;
  signal: AbortSignal;
  log: Logger;
  onProgress?: (report: RunReport, event: ProgressEvent) => void;
  /** Let sink folders remove what they hold that the source no longer has (`removeGone`). */
  syncDeletions?: boolean;
  /**
   * Only these of the folders include/exclude choose (watch mode's pass of the folders that
   * changed, watch.ts); a label folder among them brings its labelled folder (Gmail's All Mail).
   * The include patterns that match nothing are not reported again.
   */
  only?: readonly string[];
}

/**
 * What a progress display is told, in this order: `listing` while the source's folders are
 * listed; `planning` once they are chosen (`folders` to plan, none planned yet) and again each
 * time one's plan ends, planned or skipped (containers and label folders, which hold nothing to
 * copy, are not counted): the run's planned totals are final once `plannedFolders` reaches
 * `folders`; `planned` with a folder's messages to copy; `bytes` while messages arrive, at most 4
 * times a second for the whole run (flow.ts), `streaming` being the bytes received and not yet
 * committed (in no total of the report); `batch` as a batch is committed, with `streaming` after it.
 */
export type ProgressEvent =
  | { type: 'listing' }
  | { type: 'planning'; folders: number; plannedFolders: number }
  | { type: 'planned'; mailbox: string; messages: number; bytes: number; removed?: number }
  | { type: 'bytes'; mailbox: string; streaming: number }
  | { type: 'batch'; mailbox: string; messages: number; bytes: number; streaming?: number };

/** Planned messages not yet copied above which no further folder is planned. */
const PENDING_MESSAGES = 2_000;

interface Plan {
  mailbox: MailboxInfo;
  folders: SinkFolder[];
  /** The sink of each folder (same order). */
  sinks: Sink[];
  batches: MessageMeta[][];
}

export async function runPipeline(source: Source, sinks: readonly Sink[], opts: PipelineOptions): Promise<RunReport> {
  const report = new RunReport();
  report.source = source.identity;
  report.sinks = sinks.map((s) => s.name);
  const internal = new AbortController();
  const signal = AbortSignal.any([opts.signal, internal.signal]);
  const retry = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
    withRetry(what, fn, { attempts: opts.retries, baseMs: opts.retryBaseMs, log: opts.log, signal });
  // The source is used by at most `caps.parallel` plans and fetches at once (sourceSlot); twice
  // as many batches run, so that a batch's commit (fsyncs, renames) overlaps the next fetch on the
  // connection it gave back instead of holding it idle (issue 21). A batch that waits for a slot
  // holds no message in memory.
  const limit = pLimit(source.caps.parallel * 2);
  const sourceSlot = pLimit(source.caps.parallel);
  const progress = opts.onProgress;
  const copyOpts = {
    ...opts,
    sourceSlot: <T>(fn: () => Promise<T>): Promise<T> => sourceSlot(fn),
    ...(progress === undefined ? {} : { flow: new Flow((mailbox, streaming) => progress(report, { type: 'bytes', mailbox, streaming })) }),
  };

  /** Why copying stopped for good (every sink full): what is not done yet is reported, not tried. */
  let stopped: string | undefined;
  const skipFolder = (mailbox: string, reason: string): void => {
    if (!report.skipped.some((x) => x.mailbox === mailbox && x.id === undefined && x.reason === reason)) report.skipped.push({ mailbox, reason });
  };
  /** Sinks that reported a full target (kind `quota`), with the error: written no more in this run. */
  const full = new Map<Sink, MailferryError>();
  const notCopiedTo = (sink: Sink, mailbox: string): void => {
    const e = full.get(sink);
    if (e !== undefined) skipFolder(mailbox, sinks.length > 1 ? `not copied to ${sink.name}: ${e.message}` : `not copied: ${e.message}`);
  };
  const markFull = (sink: Sink, mailbox: string, e: MailferryError): void => {
    if (!full.has(sink)) {
      full.set(sink, e);
      const others = sinks.length - full.size;
      opts.log.warn(
        others > 0
          ? `${e.message}; copying to ${sink.name} stopped (the other ${others === 1 ? 'destination goes' : 'destinations go'} on), a rerun after freeing space finishes`
          : `${e.message}; copying stopped, a rerun after freeing space finishes`,
      );
    }
    if (full.size === sinks.length) stopped ??= e.message;
    notCopiedTo(sink, mailbox);
  };
  /**
   * Folder-scoped failures are reported and skipped; a full target stops copying; anything else
   * stops the whole run. Says how `fn` ended, so that a batch's unsettled messages are counted.
   */
  const guard = async (mailbox: string, fn: () => Promise<void>): Promise<'done' | 'skipped' | 'stopped' | 'aborted'> => {
    try {
      if (signal.aborted) return 'aborted';
      if (stopped !== undefined) {
        skipFolder(mailbox, `not copied: ${stopped}`);
        return 'stopped';
      }
      await fn();
      return 'done';
    } catch (e: unknown) {
      if (e instanceof MailferryError && e.kind === 'quota') {
        if (stopped === undefined) opts.log.warn(`${e.message}; copying stopped, a rerun after freeing space finishes`);
        stopped ??= e.message;
        skipFolder(mailbox, e.message);
        return 'stopped';
      }
      if (e instanceof MailferryError && (e.kind === 'mailbox' || e.kind === 'message' || (e.retryable && !signal.aborted))) {
        opts.log.warn(`${mailbox}: ${e.message}; folder skipped`);
        skipFolder(mailbox, e.message);
        return 'skipped';
      }
      internal.abort();
      throw e;
    }
  };

  progress?.(report, { type: 'listing' });
  const all = await retry('list folders', () => source.mailboxes());
  for (const sink of sinks) await sink.plan?.(all);
  const chosen = chooseFolders(all, opts.include, opts.exclude);
  // Gmail mode: a label folder is made from the labelled folder (All Mail); without it, it would stay empty.
  const labelled = all.find((m) => m.labelled === true);
  const only = opts.only === undefined ? undefined : new Set(opts.only);
  const withLabels = only !== undefined && chosen.mailboxes.some((m) => only.has(m.path) && m.label !== undefined);
  const mailboxes = only === undefined ? chosen.mailboxes : chosen.mailboxes.filter((m) => only.has(m.path) || (withLabels && m === labelled));
  const unmatched = only === undefined ? chosen.unmatched : [];
  if (labelled !== undefined && !mailboxes.includes(labelled) && mailboxes.some((m) => m.label !== undefined)) {
    const reason = `the label folders chosen are made from ${labelled.path}, which --include/--exclude left out: include it to archive their messages`;
    opts.log.warn(reason);
    report.skipped.push({ mailbox: labelled.path, reason });
  }
  for (const pattern of unmatched) {
    const hint = includeHint(all, pattern);
    opts.log.warn(`--include ${pattern}: no such folder${hint}`);
    report.skipped.push({ mailbox: pattern, reason: `no folder matches --include${hint}` });
  }
  /** Planned messages not yet copied, and folders being planned; `changed` wakes the planner. */
  let pending = 0;
  let planning = 0;
  let changed: () => void = () => undefined;
  const roomToPlan = async (): Promise<void> => {
    while (planning >= source.caps.parallel || pending > PENDING_MESSAGES) {
      await new Promise<void>((resolve) => (changed = resolve));
    }
  };
  const wake = (): void => changed();
  // Folders with messages to plan, and how many of them are planned (or skipped): the progress
  // display's totals are final, and its ETA can be trusted, only once all of them are.
  const toPlan = (m: MailboxInfo): boolean => m.noSelect !== true && m.label === undefined;
  const folderCount = mailboxes.filter(toPlan).length;
  let plannedFolders = 0;
  progress?.(report, { type: 'planning', folders: folderCount, plannedFolders });
  const copies: Promise<PromiseSettledResult<void>[]>[] = [];
  const planned: Promise<void>[] = [];
  for (const mailbox of mailboxes) {
    await roomToPlan();
    planning++;
    const plan = limit(() =>
      guard(mailbox.path, async () => {
        // A container, or a label folder (its messages come with the labelled folder's): opened, never fetched.
        if (mailbox.noSelect === true || mailbox.label !== undefined) {
          for (const sink of sinks) await sink.open(mailbox);
          return;
        }
        const live = sinks.filter((s) => !full.has(s));
        for (const s of sinks) if (full.has(s)) notCopiedTo(s, mailbox.path);
        // A listing that keeps leaving messages out is retried; the last one is taken as it is,
        // and what it left out is reported as skipped (never counted as already archived).
        let attempts = 0;
        const plan = await retry(`plan ${mailbox.path}`, async () => {
          const p = await sourceSlot(() => planFolder(source, live, mailbox, opts));
          if (p.leftOut.length > 0 && ++attempts < opts.retries) {
            throw new MailferryError('protocol', `the source listed ${p.listed} of ${p.listed + p.leftOut.length} messages (left out: ${someIds(p.leftOut)})`, {
              retryable: true,
            });
          }
          return p;
        });
        for (const id of plan.leftOut) report.skipped.push({ mailbox: mailbox.path, id, reason: `left out of every listing the server sent (${attempts} tried)` });
        for (const u of plan.unlisted) {
          opts.log.warn(`${mailbox.path}${u.id === undefined ? '' : ` ${u.id}`}: ${u.reason}`);
          report.skipped.push({ mailbox: mailbox.path, ...u });
        }
        report.folders++;
        report.unchanged += plan.unchanged;
        report.filtered += plan.filtered;
        report.flagUpdates += plan.flagUpdates;
        report.removed += plan.removed;
        const bytes = plan.batches.flat().reduce((n, m) => n + (m.size ?? 0), 0);
        const count = plan.batches.reduce((n, b) => n + b.length, 0);
        report.planned += count;
        report.plannedBytes += bytes;
        report.count(mailbox.path, { planned: count, plannedBytes: bytes, unchanged: plan.unchanged, filtered: plan.filtered });
        opts.onProgress?.(report, { type: 'planned', mailbox: mailbox.path, messages: count, bytes, ...(plan.removed > 0 ? { removed: plan.removed } : {}) });
        pending += count;
        copies.push(
          Promise.allSettled(
            plan.batches.map((batch) => {
              /** Ids of this batch whose outcome is counted: a retry asks only for the rest. */
              const settled = new Set<string>();
              const rest = (): MessageMeta[] => batch.filter((m) => !settled.has(m.id));
              return limit(() =>
                guard(plan.mailbox.path, () => {
                  const path = plan.mailbox.path;
                  const folders = plan.folders.filter((f, i) => {
                    const sink = plan.sinks[i] as Sink;
                    if (!full.has(sink)) return true;
                    if (batch.some((m) => !f.known.has(m.id))) notCopiedTo(sink, path);
                    return false;
                  });
                  const sinkOf = (f: SinkFolder): Sink => plan.sinks[plan.folders.indexOf(f)] as Sink;
                  const onFull = (f: SinkFolder, e: MailferryError): void => markFull(sinkOf(f), path, e);
                  // A source that keeps leaving the same messages out: once the retries are
                  // spent, those are reported one by one and the rest of the folder goes on.
                  let short = 0;
                  // How many of the batch's remaining messages an attempt asks for: halved after
                  // an attempt that failed having settled nothing.
                  let take = Infinity;
                  /** The messages the last attempt asked for. */
                  let part: MessageMeta[] = [];
                  const attempt = async (): Promise<'done' | 'again'> => {
                    const before = settled.size;
                    part = rest().slice(0, take);
                    try {
                      await copyBatch(source, folders, part, report, signal, copyOpts, onFull, settled);
                    } catch (e: unknown) {
                      if (e instanceof ShortBatch && ++short >= opts.retries) {
                        for (const id of e.ids) {
                          report.skipped.push({ mailbox: path, id, reason: `the source did not send it (asked ${short} times), although it is still there` });
                          report.skippedMessages++;
                          settled.add(id);
                        }
                      } else {
                        if (!(e instanceof MailferryError) || !e.retryable || signal.aborted) throw e;
                        // What came before the failure is committed (copy.ts): a fresh round of
                        // retries for the rest, so a link that drops now and then still finishes.
                        if (settled.size > before) {
                          opts.log.warn(`fetch from ${path}: ${e.message}; ${settled.size - before} of ${part.length} messages done, going on with the rest`);
                          return 'again';
                        }
                        if (part.length > 1) take = Math.ceil(part.length / 2);
                        throw e;
                      }
                    }
                    if (take !== Infinity) take *= 2; // it went through: ask for more again
                    return rest().length > 0 ? 'again' : 'done';
                  };
                  const loop = async (): Promise<void> => {
                    for (;;) {
                      let next: 'done' | 'again';
                      try {
                        next = await retry(`fetch from ${path}`, attempt);
                      } catch (e: unknown) {
                        // Halved down to one message that fails every time: it alone is reported
                        // and the rest of the batch goes on.
                        const [m] = part;
                        if (m === undefined || part.length > 1 || e instanceof ShortBatch || !(e instanceof MailferryError) || !e.retryable || signal.aborted) throw e;
                        opts.log.warn(`${path} ${m.id}: ${e.message}, each of ${opts.retries} times it was fetched; message skipped`);
                        report.skipped.push({ mailbox: path, id: m.id, reason: `fetching it failed ${opts.retries} times (${e.message})` });
                        report.skippedMessages++;
                        settled.add(m.id);
                        next = rest().length > 0 ? 'again' : 'done';
                      }
                      if (next === 'done' || signal.aborted) return;
                    }
                  };
                  return loop();
                }),
              )
                .then((ended) => {
                  // Given up on (skipped folder, copying stopped): what is left is counted as such.
                  if (ended === 'skipped') report.skippedMessages += rest().length;
                  if (ended === 'stopped') report.notCopied += rest().length;
                })
                .finally(() => {
                  pending -= batch.length;
                  wake();
                });
            }),
          ),
        );
      }),
    ).then(() => undefined).finally(() => {
      planning--;
      if (toPlan(mailbox)) progress?.(report, { type: 'planning', folders: folderCount, plannedFolders: ++plannedFolders });
      wake();
    });
    plan.catch(() => undefined); // settled below; not an unhandled rejection meanwhile
    planned.push(plan);
  }
  // Everything started has ended before the first failure is thrown (the caller then closes).
  const plannedResults = await Promise.allSettled(planned);
  const copied = (await Promise.all(copies)).flat();
  rethrowFirst(plannedResults);
  rethrowFirst(copied);
  if (opts.signal.aborted) throw new MailferryError('interrupted', 'interrupted; the archive is consistent, rerun to resume');
  const gap = closeBooks(report);
  if (gap !== 0) opts.log.warn(`the run's books do not balance: ${report.skipped.at(-1)?.reason ?? ''}`);
  report.finished = Date.now();
  return report;
}

function rethrowFirst(results: PromiseSettledResult<void>[]): void {
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}

async function planFolder(
  source: Source,
  sinks: readonly Sink[],
  mailbox: MailboxInfo,
  opts: PipelineOptions,
): Promise<Plan & { unchanged: number; filtered: number; flagUpdates: number; removed: number; unlisted: readonly Unlisted[]; leftOut: string[]; listed: number }> {
  const selected = await source.select(mailbox);
  const current = selected.mailbox;
  const folders = await Promise.all(sinks.map((s) => s.open(current)));
  for (const folder of folders) {
    if (folder.needsRematch) await rematch(source, folder, current, opts.log);
  }
  const missing = (id: string): boolean => folders.some((f) => !f.known.has(id));
  // A sink that keeps flags in step needs every message's current flags, not only the new ones.
  const syncing = folders.filter((f) => f.syncFlags !== undefined);
  // Deletions follow only for a complete listing, so every message is listed too.
  const removing = opts.syncDeletions === true ? folders.filter((f) => f.removeGone !== undefined) : [];
  const metas: MessageMeta[] = [];
  const present: MessageMeta[] = [];
  const all = syncing.length > 0 || removing.length > 0;
  // What the source was asked for: every id `wanted` accepted must be yielded. Counted, not
  // derived from SELECT's count, so a message a short reply left out is never "already archived".
  const asked = new Set<string>();
  let known = 0;
  const wanted = (id: string): boolean => {
    const take = all || missing(id);
    if (take) asked.add(id);
    else known++;
    return take;
  };
  for await (const meta of source.list(current, wanted)) {
    if (!asked.delete(meta.id)) continue; // not asked for, or twice
    (missing(meta.id) ? metas : present).push(meta);
  }
  const leftOut = asked.size > 0 ? await stillThere(source, current, [...asked], opts) : [];
  let flagUpdates = 0;
  for (const f of syncing) flagUpdates += (await f.syncFlags?.(present.concat(metas).filter((m) => f.known.has(m.id)))) ?? 0;
  const filtered = source.filtered?.(current) ?? 0;
  let removed = 0;
  if (removing.length > 0) {
    const listed = metas.length + present.length;
    if (listed !== selected.count || filtered > 0 || leftOut.length > 0) {
      // The folder changed between SELECT and the listing: what looks gone may not be.
      opts.log.info(`${current.path}: ${selected.count} messages selected, ${listed} listed (the folder changed meanwhile); deletions carried next run`);
    } else {
      const ids = new Set(present.concat(metas).map((m) => m.id));
      for (const f of removing) removed += (await f.removeGone?.(ids)) ?? 0;
    }
  }
  const unchanged = known + present.length;
  const unlisted = source.unlisted?.(current) ?? [];
  const batches = toBatches(metas, opts.batchBytes, opts.batchMessages);
  return { mailbox: current, folders, sinks: [...sinks], batches, unchanged, filtered, flagUpdates, removed, unlisted, leftOut, listed: metas.length + present.length };
}

/**
 * `list()` accepted ids it did not yield (a short metadata FETCH): the source says which are gone
 * (then they are simply not there); the rest are still there and must not pass for already archived.
 */
async function stillThere(source: Source, mailbox: MailboxInfo, left: readonly string[], opts: PipelineOptions): Promise<string[]> {
  const found = await source.missing(mailbox, left, opts.signal);
  const gone = left.filter((id) => found.gone.has(id));
  if (gone.length > 0) opts.log.debug(`${mailbox.path}: gone from the source while it was listed: ${gone.join(' ')}`);
  return left.filter((id) => !found.gone.has(id));
}

/**
 * After a UIDVALIDITY change (or an archive the state does not describe), find which source
 * messages the archive already holds by header hash and size, so they are not copied twice.
 */
async function rematch(source: Source, folder: SinkFolder, mailbox: MailboxInfo, log: Logger): Promise<void> {
  log.warn(`${mailbox.path}: UIDVALIDITY changed or archive state missing; matching the archive against the server`);
  // Each archived message may be claimed once, by its key or its alternative key.
  const have = new Map<string, { ref: string; alt: boolean }[]>();
  const add = (key: string, ref: string, alt: boolean): void => {
    have.set(key, [...(have.get(key) ?? []), { ref, alt }]);
  };
  for await (const fp of folder.fingerprints()) {
    add(fp.key, fp.ref, false);
    if (fp.alt !== undefined) add(fp.alt, fp.ref, true);
  }
  const claimed = new Set<string>();
  const matched: Match[] = [];
  for await (const h of source.headers(mailbox)) {
    // Already known (a sink may keep records it can still vouch for): not matched again.
    if (folder.known.has(h.id)) continue;
    const header = toLf(h.header);
    const candidates = [h.size, ...(h.altSize === undefined ? [] : [h.altSize])].flatMap((size) => have.get(fingerprintKey(header, size)) ?? []);
    const free = candidates.find((c) => !claimed.has(c.ref));
    if (free !== undefined) {
      claimed.add(free.ref);
      matched.push({ id: h.id, ref: free.ref, ...(free.alt ? { alt: true } : {}) });
    }
  }
  await folder.rebase(mailbox.uidValidity, matched);
  log.info(`${mailbox.path}: ${matched.length} messages already in the archive`);
}
