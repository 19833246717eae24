import { writevSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { errnoCode, MailferryError, markSourceFault } from '../domain/errors.js';
import type { MessageMeta } from '../domain/message.js';
import type { ArchiveEncoder } from '../formats/encoder.js';

/** Bound for a streamed body whose size the source did not give. */
const UNSIZED_LIMIT = 256 * 1024 * 1024;
/** Slack over the announced size (POP3 LIST sizes are estimates). */
const SIZE_SLACK = 64 * 1024;

/** Where bytes go: a FileHandle, or a wrapper that writes at a tracked position. */
export interface Writer {
  writev(parts: Buffer[]): Promise<{ bytesWritten: number }>;
}

/**
 * Stream a body (Buffer or Readable) through an encoder into a writer. Two kinds of failure, told
 * apart here once for every sink: the body stream's error is the source's (a connection cut while
 * the message streams: thrown as `sourceError` gives it, retryable), the writer's is the sink's
 * own, thrown as it came (the sink maps it to `destination`, naming its file). Either way the
 * stream is destroyed before this rejects, so the source stops sending at once; the caller closes
 * its file.
 */
export async function writeEncoded(fh: Writer, body: Buffer | Readable, enc: ArchiveEncoder): Promise<void> {
  if (Buffer.isBuffer(body)) {
    await writeAll(fh, [...enc.push(body), ...enc.end()]);
    return;
  }
  for await (const chunk of sourceChunks(body)) await writeAll(fh, enc.push(chunk));
  await writeAll(fh, enc.end());
}

/**
 * The chunks of a body stream as Buffers; whatever the stream fails with is the source's error: a
 * MailferryError as the source typed it (the IMAP source's streams fail with its lost-connection
 * error), anything else a retryable source error, never read as the sink's own (a stream's error
 * codes, NoConnection or EIO of a file being read, are not the archive's).
 */
export async function* sourceChunks(body: Readable): AsyncIterable<Buffer> {
  const it = (body as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Buffer | string>;
      try {
        next = await it.next();
      } catch (e: unknown) {
        throw sourceError(e);
      }
      if (next.done === true) return;
      yield typeof next.value === 'string' ? Buffer.from(next.value, 'latin1') : next.value;
    }
  } finally {
    // A consumer that stops early (its write failed, the message is too long) stops the source too.
    body.destroy();
  }
}

/** What a body stream failed with, as the source's error (retryable unless the source typed it otherwise). */
export function sourceError(e: unknown): MailferryError {
  if (e instanceof MailferryError) return markSourceFault(e);
  const why = errnoCode(e) ?? (e instanceof Error ? e.message : String(e));
  return markSourceFault(new MailferryError('network', `the source's stream of a message failed (${why})`, { cause: e, retryable: true }));
}

export async function writeAll(fh: Writer, parts: Buffer[]): Promise<void> {
  // writev may write partially; loop until everything is out.
  let pending = parts;
  while (pending.length > 0) {
    const { bytesWritten } = await fh.writev(pending);
    pending = dropWritten(pending, bytesWritten);
  }
}

/**
 * writev with direct calls until every byte is out, at file position `pos`; returns the position
 * after the last byte. For bodies already in memory: a write into the page cache takes
 * microseconds, less than a thread-pool round trip.
 */
export function writeAllSyncAt(fd: number, parts: Buffer[], pos: number): number {
  let pending = parts;
  let at = pos;
  while (pending.length > 0) {
    const n = writevSync(fd, pending, at);
    at += n;
    pending = dropWritten(pending, n);
  }
  return at;
}

/** What is left of `parts` after the first `n` bytes went out. */
export function dropWritten(parts: Buffer[], n: number): Buffer[] {
  let skip = n;
  const rest: Buffer[] = [];
  for (const p of parts) {
    if (skip >= p.length) {
      skip -= p.length;
      continue;
    }
    rest.push(skip > 0 ? p.subarray(skip) : p);
    skip = 0;
  }
  return rest;
}

/** The most bytes a streamed body may have: `size` may be an estimate in LF form (a Maildir file), CRLF at most doubles it. */
export function bodyLimit(meta: MessageMeta): number {
  return meta.size === undefined ? UNSIZED_LIMIT : 2 * meta.size + SIZE_SLACK;
}

/**
 * The whole message, as the source handed it (the wire form, CRLF: no conversion here, so its
 * length is the size the source's `headers()` reports for it). A Readable is read to its end, but
 * never more than the size the source announced (plus slack) is held: a longer stream is a
 * `message` error.
 */
export async function collect(body: Buffer | Readable, meta: MessageMeta, path: string): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const parts: Buffer[] = [];
  for await (const b of boundedChunks(body, bodyLimit(meta), `${path} ${meta.id}`)) parts.push(b);
  return Buffer.concat(parts);
}

/**
 * The chunks of a streamed body as Buffers (sourceChunks: the stream's error is the source's).
 * More than `limit` bytes in all is a `message` error (`what` names the message), and the stream
 * is destroyed: never more than that is read.
 */
export async function* boundedChunks(body: Readable, limit: number, what: string): AsyncIterable<Buffer> {
  let n = 0;
  for await (const b of sourceChunks(body)) {
    n += b.length;
    if (n > limit) {
      throw new MailferryError('message', `${what}: message longer than the ${limit} bytes announced`);
    }
    yield b;
  }
}
