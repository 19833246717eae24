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
  // writev may write partially; loop until everything is out.
  let pending = parts;
  while (pending.length > 0) {
    const { bytesWritten } = await fh.writev(pending);
    pending = dropWritten(pending, bytesWritten);
  }
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
