import { writevSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { MailferryError } from '../domain/errors.js';
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

/** Stream a body (Buffer or Readable) through an encoder into a writer. */
export async function writeEncoded(fh: Writer, body: Buffer | Readable, enc: ArchiveEncoder): Promise<void> {
  if (Buffer.isBuffer(body)) {
    await writeAll(fh, [...enc.push(body), ...enc.end()]);
    return;
  }
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    await writeAll(fh, enc.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk));
  }
  await writeAll(fh, enc.end());
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
 * The chunks of a streamed body as Buffers. More than `limit` bytes in all is a `message` error
 * (`what` names the message), and the stream is destroyed: never more than that is read.
 */
export async function* boundedChunks(body: Readable, limit: number, what: string): AsyncIterable<Buffer> {
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    n += b.length;
    if (n > limit) {
      body.destroy();
      throw new MailferryError('message', `${what}: message longer than the ${limit} bytes announced`);
    }
    yield b;
  }
}
