import { PassThrough, type Readable } from 'node:stream';
import { MailferryError } from '../domain/errors.js';
import type { MessageMeta } from '../domain/message.js';
import type { RunReport } from '../report.js';
import type { SinkFolder, Tx } from '../sinks/sink.js';
import type { Source } from '../sources/source.js';
import type { Logger } from '../log/logger.js';

/** What copyBatch uses of the run's options (PipelineOptions in run.ts is one; typed here so run.ts and this file do not import each other). */
interface CopyOptions {
  log: Logger;
  onProgress?: (report: RunReport, event: { type: 'batch'; mailbox: string; messages: number; bytes: number }) => void;
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
 * - A message a sink refuses only at commit (`tx.refused()`) is reported too, and not counted.
 */
export async function copyBatch(
  source: Source,
  folders: readonly SinkFolder[],
  batch: readonly MessageMeta[],
  report: RunReport,
  signal: AbortSignal,
  opts: CopyOptions,
  onFull: (folder: SinkFolder, e: MailferryError) => void,
): Promise<void> {
  const todo = batch.filter((m) => folders.some((f) => !f.known.has(m.id)));
  if (todo.length === 0) return;
  const txs = new Map<SinkFolder, Promise<Tx>>();
  for (const f of folders) {
    if (!todo.some((m) => !f.known.has(m.id))) continue;
    const tx = f.begin();
    tx.catch(() => undefined); // awaited later; not an unhandled rejection meanwhile
    txs.set(f, tx);
  }
  const mailbox = todo[0]?.mailbox.path ?? '';
  let messages = 0;
  let bytes = 0;
  /** Per message written: to how many sinks, and its size. */
  const writes = new Map<string, { n: number; bytes: number }>();
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
        opts.log.warn(`${meta.mailbox.path} ${meta.id}: ${e.message}; message skipped`);
        report.skipped.push({ mailbox: meta.mailbox.path, id: meta.id, reason: e.message });
      }
      return false;
    }
  };
  try {
    for await (const { meta, body } of source.fetch(todo, signal)) {
      const targets = folders.filter((f) => !f.known.has(meta.id) && !fullFolders.has(f));
      const bodies = fanOut(body, targets.length);
      if (targets.length === 0 && !Buffer.isBuffer(body)) body.resume();
      const n = (await Promise.all(targets.map((f, i) => write(f, meta, bodies[i] as Buffer | Readable)))).filter((w) => w).length;
      if (n > 0) {
        messages++;
        bytes += meta.size ?? (Buffer.isBuffer(body) ? body.length : 0);
        writes.set(meta.id, { n, bytes: meta.size ?? 0 });
      }
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
    await Promise.all([...txs.values()].map((tx) => tx.then((t) => t.abort(), () => undefined)));
    throw e;
  }
  for (const tx of txs.values()) {
    for (const r of (await tx).refused?.() ?? []) {
      // Left out because the target is full: reported once, with the folder, by the guard.
      if (r.full !== true) report.skipped.push({ mailbox, id: r.id, reason: r.reason });
      const w = writes.get(r.id);
      if (w !== undefined && --w.n === 0) {
        messages--;
        bytes -= w.bytes;
      }
    }
  }
  report.messages += messages;
  report.bytes += bytes;
  opts.onProgress?.(report, { type: 'batch', mailbox, messages, bytes });
  for (const [f, e] of fullFolders) onFull(f, e);
}

/** The same body for n writers: a Buffer is shared; a stream is teed with backpressure. */
function fanOut(body: Buffer | Readable, n: number): (Buffer | Readable)[] {
  if (Buffer.isBuffer(body) || n <= 1) return Array.from({ length: n }, () => body);
  const outs = Array.from({ length: n }, () => new PassThrough({ highWaterMark: 1 << 20 }));
  for (const o of outs) body.pipe(o);
  body.on('error', (e) => outs.forEach((o) => o.destroy(e)));
  return outs;
}
