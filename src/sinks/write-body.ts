import type { Readable } from 'node:stream';
import { ArchiveEncoder } from '../formats/encoder.js';

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
  if (parts.length === 0) return;
  // writev may write partially; loop until everything is out.
  let pending = parts;
  while (pending.length > 0) {
    const total = pending.reduce((n, p) => n + p.length, 0);
    const { bytesWritten } = await fh.writev(pending);
    if (bytesWritten >= total) return;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const p of pending) {
      if (skip >= p.length) {
        skip -= p.length;
        continue;
      }
      rest.push(skip > 0 ? p.subarray(skip) : p);
      skip = 0;
    }
    pending = rest;
  }
}
