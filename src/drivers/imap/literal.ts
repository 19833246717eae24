import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { MailferryError } from '../../domain/errors.js';
import { lfToCrlf } from '../../formats/encoder.js';
import { boundedChunks } from '../body.js';

/**
 * The bytes of one message as an IMAP literal (multi-append.ts): its exact size in wire form
 * (CRLF), whether it holds NUL (then literal8), and its bytes in chunks, as often as asked (a
 * refused MULTIAPPEND group is sent again one message at a time).
 *
 * - `memoryLiteral`: a Buffer already in wire form; chunks are views of it, never copies.
 * - `spoolLiteral`: a streamed body (a message over the source's stream threshold), converted to
 *   CRLF on the way into a file under the system's temporary directory, so that neither the whole
 *   message nor a copy of it is ever in memory. The file is created 0600 in a fresh 0700
 *   directory and both are unlinked at once: only the open handle keeps it, so nothing of the
 *   message is left on disk however the process ends (a crash or SIGKILL included); `remove()`
 *   closes the handle. `head` keeps its first bytes (the header block, for the date and the
 *   re-match fingerprint). Longer than `limit` bytes is a `message` error.
 */
export interface Literal {
  readonly size: number;
  readonly nul: boolean;
  chunks(): AsyncIterable<Buffer>;
}

export interface Spooled extends Literal {
  /** The message's first bytes (up to HEAD_BYTES): its header block unless that is longer. */
  readonly head: Buffer;
  remove(): Promise<void>;
}

/** Bytes per write of a literal to the socket. */
const CHUNK = 256 * 1024;
/** How much of a spooled message's beginning is kept for its header block. */
const HEAD_BYTES = 256 * 1024;

export function memoryLiteral(raw: Buffer): Literal {
  return {
    size: raw.length,
    nul: raw.includes(0),
    async *chunks() {
      for (let at = 0; at < raw.length; at += CHUNK) yield raw.subarray(at, at + CHUNK);
    },
  };
}

export async function spoolLiteral(body: Readable, limit: number, what: string): Promise<Spooled> {
  const fh = await anonymousFile();
  try {
    let size = 0;
    let nul = false;
    let afterCr = false;
    const head: Buffer[] = [];
    let headLen = 0;
    for await (const b of boundedChunks(body, limit, what)) {
      if (b.length === 0) continue;
      const wire = lfToCrlf(b, afterCr);
      afterCr = b[b.length - 1] === 0x0d;
      nul ||= wire.includes(0);
      if (headLen < HEAD_BYTES) {
        const part = Buffer.from(wire.subarray(0, HEAD_BYTES - headLen));
        head.push(part);
        headLen += part.length;
      }
      for (let at = 0; at < wire.length; ) at += (await fh.write(wire, at, wire.length - at).catch(spoolError)).bytesWritten;
      size += wire.length;
    }
    return {
      size,
      nul,
      head: Buffer.concat(head, headLen),
      // Positional reads from the start, as often as asked; the handle stays open until remove().
      chunks: () => fh.createReadStream({ start: 0, highWaterMark: CHUNK, autoClose: false, emitClose: false }),
      remove: () => fh.close(),
    };
  } catch (e: unknown) {
    await fh.close();
    throw e;
  }
}

/** A new file open for reading and writing whose name is already gone (see spoolLiteral). */
async function anonymousFile(): Promise<FileHandle> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mailferry-spool-')).catch(spoolError);
  try {
    return await open(path.join(dir, 'message'), 'wx+', 0o600).catch(spoolError);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The temporary directory cannot take the message (full, read-only): the run cannot go on. */
function spoolError(e: unknown): never {
  const code = typeof e === 'object' && e !== null ? String((e as { code?: unknown }).code ?? '') : '';
  throw new MailferryError('destination', `cannot spool a large message under ${os.tmpdir()} (${code || String(e)}); set TMPDIR to a directory with room`, { cause: e });
}
