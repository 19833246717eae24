import { PassThrough, Readable } from 'node:stream';
import pLimit from 'p-limit';
import { MailferryError } from '../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import { fingerprintKey, toLf } from '../formats/fingerprint.js';
import type { Logger } from '../log/logger.js';
import { RunReport } from '../report.js';
import type { Match, Sink, SinkFolder, Tx } from '../sinks/sink.js';
import type { Source } from '../sources/source.js';
import { toBatches } from './batches.js';
import { folderFilter, selectMailboxes, unmatchedIncludes } from './folders.js';
import { withRetry } from './retry.js';

/**
 * The engine, written once against Source and Sink: plan every folder (what is new for any sink),
 * then run fetch batches through p-limit with as many in flight as the source has connections.
 * A batch's messages are written to every sink that lacks them, and acknowledged (checkpointed) by
 * each sink's commit only after they are durable. A dropped connection retries the batch; a bad
 * folder is skipped and reported, and so is a message a sink refuses (kind `message`: the rest of
 * the batch goes on); a full target (kind `quota`) ends the batch with what was written committed and
 * stops copying (what is left is reported as not copied); a destination, auth, TLS or usage error
 * stops the run.
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
}

export type ProgressEvent =
  | { type: 'planned'; mailbox: string; messages: number; bytes: number }
  | { type: 'batch'; mailbox: string; messages: number; bytes: number };

interface Plan {
  mailbox: MailboxInfo;
  folders: SinkFolder[];
  batches: MessageMeta[][];
}

export async function runPipeline(source: Source, sinks: readonly Sink[], opts: PipelineOptions): Promise<RunReport> {
  const report = new RunReport();
  const internal = new AbortController();
  const signal = AbortSignal.any([opts.signal, internal.signal]);
  const retry = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
    withRetry(what, fn, { attempts: opts.retries, baseMs: opts.retryBaseMs, log: opts.log, signal });
  const limit = pLimit(source.caps.parallel);

  /** Why copying stopped for good (a full target): what is not done yet is reported, not tried. */
  let stopped: string | undefined;
  const skipFolder = (mailbox: string, reason: string): void => {
    if (!report.skipped.some((x) => x.mailbox === mailbox && x.id === undefined)) report.skipped.push({ mailbox, reason });
  };
  /** Folder-scoped failures are reported and skipped; a full target stops copying; anything else stops the whole run. */
  const guard = async (mailbox: string, fn: () => Promise<void>): Promise<void> => {
    try {
      if (signal.aborted) return;
      if (stopped !== undefined) return skipFolder(mailbox, `not copied: ${stopped}`);
      await fn();
    } catch (e: unknown) {
      if (e instanceof MailferryError && e.kind === 'quota') {
        if (stopped === undefined) opts.log.warn(`${e.message}; copying stopped, a rerun after freeing space finishes`);
        stopped ??= e.message;
        return skipFolder(mailbox, e.message);
      }
      if (e instanceof MailferryError && (e.kind === 'mailbox' || e.kind === 'message' || (e.retryable && !signal.aborted))) {
        opts.log.warn(`${mailbox}: ${e.message}; folder skipped`);
        skipFolder(mailbox, e.message);
        return;
      }
      internal.abort();
      throw e;
    }
  };

  const all = await retry('list folders', () => source.mailboxes());
  const mailboxes = selectMailboxes(all, folderFilter(opts.include, opts.exclude));
  for (const pattern of unmatchedIncludes(all, opts.include)) {
    opts.log.warn(`--include ${pattern}: no such folder`);
    report.skipped.push({ mailbox: pattern, reason: 'no folder matches --include' });
  }
  const plans: Plan[] = [];

  const planned = await Promise.allSettled(
    mailboxes.map((mailbox) =>
      limit(() =>
        guard(mailbox.path, async () => {
          if (mailbox.noSelect) {
            for (const sink of sinks) await sink.open(mailbox);
            return;
          }
          const plan = await retry(`plan ${mailbox.path}`, () => planFolder(source, sinks, mailbox, opts));
          report.folders++;
          report.unchanged += plan.unchanged;
          report.filtered += plan.filtered;
          report.flagUpdates += plan.flagUpdates;
          const bytes = plan.batches.flat().reduce((n, m) => n + (m.size ?? 0), 0);
          const count = plan.batches.reduce((n, b) => n + b.length, 0);
          report.planned += count;
          report.plannedBytes += bytes;
          opts.onProgress?.(report, { type: 'planned', mailbox: mailbox.path, messages: count, bytes });
          plans.push(plan);
        }),
      ),
    ),
  );
  rethrowFirst(planned);

  const jobs = plans.flatMap((plan) => plan.batches.map((batch) => ({ plan, batch })));
  const ran = await Promise.allSettled(
    jobs.map(({ plan, batch }) =>
      limit(() =>
        guard(plan.mailbox.path, () =>
          retry(`fetch from ${plan.mailbox.path}`, () => copyBatch(source, plan.folders, batch, report, signal, opts)),
        ),
      ),
    ),
  );
  rethrowFirst(ran);
  if (opts.signal.aborted) throw new MailferryError('interrupted', 'interrupted; the archive is consistent, rerun to resume');
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
): Promise<Plan & { unchanged: number; filtered: number; flagUpdates: number }> {
  const selected = await source.select(mailbox);
  const current = selected.mailbox;
  const folders = await Promise.all(sinks.map((s) => s.open(current)));
  for (const folder of folders) {
    if (folder.needsRematch) await rematch(source, folder, current, opts.log);
  }
  const missing = (id: string): boolean => folders.some((f) => !f.known.has(id));
  // A sink that keeps flags in step needs every message's current flags, not only the new ones.
  const syncing = folders.filter((f) => f.syncFlags !== undefined);
  const metas: MessageMeta[] = [];
  const present: MessageMeta[] = [];
  for await (const meta of source.list(current, syncing.length > 0 ? () => true : missing)) (missing(meta.id) ? metas : present).push(meta);
  let flagUpdates = 0;
  for (const f of syncing) flagUpdates += (await f.syncFlags?.(present.concat(metas).filter((m) => f.known.has(m.id)))) ?? 0;
  const filtered = source.filtered?.(current) ?? 0;
  const unchanged = Math.max(0, selected.count - metas.length - filtered);
  return { mailbox: current, folders, batches: toBatches(metas, opts.batchBytes, opts.batchMessages), unchanged, filtered, flagUpdates };
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

async function copyBatch(
  source: Source,
  folders: readonly SinkFolder[],
  batch: readonly MessageMeta[],
  report: RunReport,
  signal: AbortSignal,
  opts: PipelineOptions,
): Promise<void> {
  const todo = batch.filter((m) => folders.some((f) => !f.known.has(m.id)));
  if (todo.length === 0) return;
  const txs = new Map<SinkFolder, Tx>();
  const txOf = async (f: SinkFolder): Promise<Tx> => {
    let tx = txs.get(f);
    if (tx === undefined) {
      tx = await f.begin();
      txs.set(f, tx);
    }
    return tx;
  };
  let messages = 0;
  let bytes = 0;
  /** Folders that reported a full target in this batch: written no more; the batch ends with the error. */
  let full: MailferryError | undefined;
  const fullFolders = new Set<SinkFolder>();
  try {
    for await (const { meta, body } of source.fetch(todo, signal)) {
      const targets = folders.filter((f) => !f.known.has(meta.id) && !fullFolders.has(f));
      const bodies = fanOut(body, targets.length);
      if (targets.length === 0 && !Buffer.isBuffer(body)) body.resume();
      const written = await Promise.all(
        targets.map(async (f, i) => {
          const b = bodies[i] as Buffer | Readable;
          try {
            await (await txOf(f)).write(meta, b);
            return true;
          } catch (e: unknown) {
            // A message the sink refuses is skipped (the rest goes on); a full target takes no more.
            if (!(e instanceof MailferryError) || (e.kind !== 'message' && e.kind !== 'quota')) throw e;
            if (!Buffer.isBuffer(b)) b.resume();
            if (e.kind === 'quota') {
              full ??= e;
              fullFolders.add(f);
            } else {
              opts.log.warn(`${meta.mailbox.path} ${meta.id}: ${e.message}; message skipped`);
              report.skipped.push({ mailbox: meta.mailbox.path, id: meta.id, reason: e.message });
            }
            return false;
          }
        }),
      );
      if (written.some((w) => w)) {
        messages++;
        bytes += meta.size ?? (Buffer.isBuffer(body) ? body.length : 0);
      }
    }
    // What was written before a refusal is kept: commit it, then report the refusal.
    await Promise.all([...txs.values()].map((tx) => tx.commit()));
  } catch (e: unknown) {
    await Promise.all([...txs.values()].map((tx) => tx.abort()));
    throw e;
  }
  report.messages += messages;
  report.bytes += bytes;
  opts.onProgress?.(report, { type: 'batch', mailbox: todo[0]?.mailbox.path ?? '', messages, bytes });
  if (full !== undefined) throw full;
}

/** The same body for n writers: a Buffer is shared; a stream is teed with backpressure. */
function fanOut(body: Buffer | Readable, n: number): (Buffer | Readable)[] {
  if (Buffer.isBuffer(body) || n <= 1) return Array.from({ length: n }, () => body);
  const outs = Array.from({ length: n }, () => new PassThrough({ highWaterMark: 1 << 20 }));
  for (const o of outs) body.pipe(o);
  body.on('error', (e) => outs.forEach((o) => o.destroy(e)));
  return outs;
}
