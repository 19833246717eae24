import { PassThrough, type Readable } from 'node:stream';
import { MailferryError, isSourceFault } from '../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import type { RunReport, Skipped } from '../report.js';
import type { SinkFolder, Tx } from '../sinks/sink.js';
import type { Source } from '../sources/source.js';
import type { Logger } from '../log/logger.js';
import type { Flow } from './flow.js';

/** What copyBatch uses of the run's options (PipelineOptions in run.ts is one; typed here so run.ts and this file do not import each other). */
interface CopyOptions {
  log: Logger;
  onProgress?: (report: RunReport, event: { type: 'batch'; mailbox: string; messages: number; bytes: number; streaming?: number }) => void;
  /** Counts bytes as they arrive, for a progress display (flow.ts); none without one. */
  flow?: Flow;
  /** Runs a use of the source (the fetch, `missing()`) within the source's `caps.parallel`; the commit runs outside it. */
  sourceSlot?: <T>(fn: () => Promise<T>) => Promise<T>;
}

/**
 * One fetch batch of one folder into every sink folder that lacks its messages.
 *
 * - Transactions are begun before the first await, in the order batches start (p-limit starts
 *   them in order), so a serial sink (one mbox file) takes a folder's batches in order and writes
 *   its messages in the source's order, although the batches are fetched in parallel.
 * - A message a sink refuses (`message`) is skipped and reported, the rest goes on; a full target
 *   (`quota`) takes no more in this batch, what was written to it is committed, the other sink
 *   folders go on, and `onFull` is told once the batch has ended (the caller stops that sink).
 * - A message a sink refuses after its `write` resolved (`tx.refused()`: an IMAP target's groups,
 *   an SMTP relay's reply) is reported too, with the commit, and not counted. Those are the only two ways.
 * - Reconciled once committed: the messages asked for, minus those that arrived, must be none. The
 *   rest is put to `source.missing()`: gone ones count as vanished, refused ones are skipped with
 *   the source's reason, held-back ones are counted as such; any other makes the batch fail as
 *   retryable ("the source returned 372 of 400 messages"), after what arrived is committed.
 * - The source is used only inside `opts.sourceSlot` (the fetch, then `missing()`), never while
 *   the sinks commit: another batch fetches meanwhile on the connection this one gave back.
 * - Every message of `batch` whose outcome is settled (copied, skipped, vanished, held, not copied
 *   to a full target) is counted once in `report` and added to `settled`, so a retry of the batch
 *   asks only for the rest. Refusals are reported only with the commit, so a batch that fails
 *   before it reports nothing twice.
 * - With `opts.flow` (a progress display), the bytes of each message are counted as they arrive
 *   (flow.ts), apart from the report; the attempt's count ends with it, committed or failed.
 */
export async function copyBatch(
  source: Source,
  folders: readonly SinkFolder[],
  batch: readonly MessageMeta[],
  report: RunReport,
  signal: AbortSignal,
  opts: CopyOptions,
  onFull: (folder: SinkFolder, e: MailferryError) => void,
  settled: Set<string>,
): Promise<void> {
  const todo = batch.filter((m) => folders.some((f) => !f.known.has(m.id)));
  const asked = new Set(todo.map((m) => m.id));
  // Lacking only from sinks that are full (left out of `folders`): not copied, reported by the caller.
  for (const m of batch) {
    if (!asked.has(m.id)) {
      report.notCopied++;
      settled.add(m.id);
    }
  }
  if (todo.length === 0) return;
  const txs = new Map<SinkFolder, Promise<Tx>>();
  for (const f of folders) {
    if (!todo.some((m) => !f.known.has(m.id))) continue;
    const tx = f.begin();
    tx.catch(() => undefined); // awaited later; not an unhandled rejection meanwhile
    txs.set(f, tx);
  }
  const first = todo[0] as MessageMeta;
  const mailbox = first.mailbox.path;
  // This attempt's bytes as they arrive; they leave the run's count when it ends (flow.ts).
  const tally = opts.flow?.batch(mailbox);
  let messages = 0;
  let bytes = 0;
  /** Per message written: to how many sinks, and its size. */
  const writes = new Map<string, { n: number; bytes: number }>();
  const arrived = new Set<string>();
  /** Refusals by a sink, reported once the batch is committed. */
  const refusals: Skipped[] = [];
  /** Folders that reported a full target in this batch, with the error: written no more. */
  const fullFolders = new Map<SinkFolder, MailferryError>();
  const write = async (f: SinkFolder, meta: MessageMeta, b: Buffer | Readable): Promise<boolean> => {
    try {
      await (await (txs.get(f) as Promise<Tx>)).write(meta, b);
      return true;
    } catch (e: unknown) {
      if (!(e instanceof MailferryError) || (e.kind !== 'message' && e.kind !== 'quota')) throw e;
      if (!Buffer.isBuffer(b)) b.resume();
      if (e.kind === 'quota') {
        if (!fullFolders.has(f)) fullFolders.set(f, e);
      } else {
        refusals.push({ mailbox: meta.mailbox.path, id: meta.id, reason: e.message });
      }
      return false;
    }
  };
  /** Ids whose writes all ended (written, or refused by a sink): their outcome is known. */
  const ended = new Set<string>();
  /** A retryable failure of the source (a connection lost, a stream cut mid-message): thrown after the commit. */
  let cut: MailferryError | undefined;
  /** A write failed for the sink's own reason (not a body stream of the source's). */
  let sinkFailed = false;
  try {
    const slot = opts.sourceSlot ?? (<T>(fn: () => Promise<T>): Promise<T> => fn());
    try {
      await slot(async () => {
        for await (const { meta, body } of source.fetch(todo, signal)) {
          if (!asked.has(meta.id) || arrived.has(meta.id)) {
            // Not asked for, or twice: not ours to write (the contract says each once).
            if (!Buffer.isBuffer(body)) body.resume();
            continue;
          }
          arrived.add(meta.id);
          const targets = folders.filter((f) => !f.known.has(meta.id) && !fullFolders.has(f));
          const bodies = fanOut(targets.length === 0 || tally === undefined ? body : tally.count(body), targets.length);
          if (targets.length === 0 && !Buffer.isBuffer(body)) body.resume();
          // Every write ends before the next step (a failed stream fails each of them): a sink is
          // never committed with a write still running.
          const results = await Promise.allSettled(targets.map((f, i) => write(f, meta, bodies[i] as Buffer | Readable)));
          const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
          if (failed !== undefined) {
            // A sink's own failure (an IMAP target's connection kicked mid-APPEND) is not a cut of the
            // source: that sink cannot vouch for what it was sending, so nothing is committed (below)
            // and the batch is retried whole, the sink re-matching what reached it.
            if (!isSourceFault(failed.reason)) sinkFailed = true;
            throw failed.reason;
          }
          const n = results.filter((r) => r.status === 'fulfilled' && r.value).length;
          ended.add(meta.id);
          if (n > 0) {
            messages++;
            bytes += meta.size ?? (Buffer.isBuffer(body) ? body.length : 0);
            writes.set(meta.id, { n, bytes: meta.size ?? 0 });
          }
        }
      });
    } catch (e: unknown) {
      // Lost on the way (the source's error, whichever stream carried it: the sink dropped only
      // that message's file): what was written before is committed and counted below, and the
      // retry asks only for the rest. Anything else (the archive's error, an interrupt) aborts.
      if (!(e instanceof MailferryError) || !e.retryable || signal.aborted || sinkFailed) throw e;
      cut = e;
    }
    // What was written before a refusal is kept: commit it, then report the refusal.
    const committing = [...txs.entries()];
    const committed = await Promise.allSettled(committing.map(async ([, tx]) => (await tx).commit()));
    for (const [i, r] of committed.entries()) {
      if (r.status === 'fulfilled') continue;
      if (!(r.reason instanceof MailferryError && r.reason.kind === 'quota')) throw r.reason;
      const f = (committing[i] as [SinkFolder, Promise<Tx>])[0];
      if (!fullFolders.has(f)) fullFolders.set(f, r.reason);
    }
  } catch (e: unknown) {
    tally?.close();
    await Promise.all([...txs.values()].map((tx) => tx.then((t) => t.abort(), () => undefined)));
    throw e;
  }
  for (const tx of txs.values()) {
    for (const r of (await tx).refused?.() ?? []) {
      // Left out because the target is full: reported once, with the folder, by the guard.
      if (r.full !== true) refusals.push({ mailbox, id: r.id, reason: r.reason });
      const w = writes.get(r.id);
      if (w !== undefined && --w.n === 0) {
        messages--;
        bytes -= w.bytes;
      }
    }
  }
  const skipped = new Set<string>();
  for (const r of refusals) {
    opts.log.warn(`${r.mailbox} ${r.id ?? ''}: ${r.reason}; message skipped`);
    report.skipped.push(r);
    if (r.id !== undefined) skipped.add(r.id);
  }
  for (const id of ended) {
    settled.add(id);
    if ((writes.get(id)?.n ?? 0) > 0) continue; // copied: counted in `messages`
    if (skipped.has(id)) report.skippedMessages++;
    else report.notCopied++; // every target that lacked it is full
  }
  tally?.close();
  report.messages += messages;
  report.bytes += bytes;
  report.count(mailbox, { messages, bytes });
  opts.onProgress?.(report, { type: 'batch', mailbox, messages, bytes, ...(opts.flow === undefined ? {} : { streaming: opts.flow.bytes }) });
  for (const [f, e] of fullFolders) onFull(f, e);
  if (cut !== undefined) throw cut;
  const left = todo.filter((m) => !arrived.has(m.id)).map((m) => m.id);
  if (left.length > 0) await (opts.sourceSlot ?? ((fn) => fn()))(() => reconcile(source, first.mailbox, left, todo.length, report, signal, opts, settled));
}

/**
 * The ids a fetch did not yield, put to the source: what it accounts for is counted and settled;
 * anything still there fails the batch as retryable.
 */
async function reconcile(
  source: Source,
  mailbox: MailboxInfo,
  left: readonly string[],
  asked: number,
  report: RunReport,
  signal: AbortSignal,
  opts: CopyOptions,
  settled: Set<string>,
): Promise<void> {
  const found = await source.missing(mailbox, left, signal);
  const still: string[] = [];
  const gone: string[] = [];
  for (const id of left) {
    const refused = found.refused?.get(id);
    if (found.gone.has(id)) {
      report.vanished++;
      gone.push(id);
    } else if (refused !== undefined) {
      opts.log.warn(`${mailbox.path} ${id}: ${refused}; message skipped`);
      report.skipped.push({ mailbox: mailbox.path, id, reason: refused });
      report.skippedMessages++;
    } else if (found.held?.has(id) === true) {
      report.held++;
    } else {
      still.push(id);
      continue;
    }
    settled.add(id);
  }
  if (gone.length > 0) opts.log.debug(`${mailbox.path}: vanished from the source meanwhile: ${gone.join(' ')}`);
  if (still.length > 0) {
    throw new ShortBatch(`the source returned ${asked - left.length} of ${asked} messages (still there, not sent: ${someIds(still)})`, still);
  }
}

/** A fetch that fell short of messages still there: retryable; `ids` are those messages. */
export class ShortBatch extends MailferryError {
  constructor(
    message: string,
    readonly ids: readonly string[],
  ) {
    super('protocol', message, { retryable: true });
  }
}

/** A few ids for a one-line message: the first five, and how many more. */
export function someIds(ids: readonly string[]): string {
  return ids.slice(0, 5).join(', ') + (ids.length > 5 ? `, and ${ids.length - 5} more` : '');
}

/** The same body for n writers: a Buffer is shared; a stream is teed with backpressure. */
function fanOut(body: Buffer | Readable, n: number): (Buffer | Readable)[] {
  if (Buffer.isBuffer(body) || n <= 1) return Array.from({ length: n }, () => body);
  const outs = Array.from({ length: n }, () => new PassThrough({ highWaterMark: 1 << 20 }));
  for (const o of outs) body.pipe(o);
  body.on('error', (e) => outs.forEach((o) => o.destroy(e)));
  return outs;
}
