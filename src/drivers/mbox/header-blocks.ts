import type { FileHandle } from 'node:fs/promises';
import type { MboxSpan } from '../../formats/mbox-reader.js';
import { openNoFollow } from '../../state/no-follow.js';
import { MailferryError } from '../../domain/errors.js';
import { localError } from '../local.js';

/**
 * The header block of each indexed message (formats/mbox-reader.ts MboxSpan), as it lies in the
 * file: LF, still mboxrd-quoted. Read in windows of consecutive messages (one read serves many
 * small ones; a large message's body is skipped, never read), so memory stays within
 * HEADER_WINDOW beyond one long header. The mbox Source's headers() and the mbox Sink's
 * re-match (fingerprints) both read an archive this way.
 */
export async function* headerBlocks(file: string, spans: readonly MboxSpan[]): AsyncGenerator<{ span: MboxSpan; raw: Buffer }> {
  if (spans.length === 0) return;
  const fh = await openNoFollow(file, 'r').catch((e: unknown) => {
    throw localError('mailbox', e, `mbox ${file}`);
  });
  try {
    const last = (spans[spans.length - 1] as MboxSpan).end;
    let win: Buffer = Buffer.alloc(0);
    let winStart = 0;
    for (const s of spans) {
      let raw: Buffer;
      if (s.start >= winStart && s.headerEnd <= winStart + win.length) raw = win.subarray(s.start - winStart, s.headerEnd - winStart);
      else if (s.headerEnd - s.start > HEADER_WINDOW) raw = await readRange(fh, s.start, s.headerEnd, file);
      else {
        win = await readRange(fh, s.start, Math.min(s.start + HEADER_WINDOW, last), file);
        winStart = s.start;
        raw = win.subarray(0, s.headerEnd - s.start);
      }
      yield { span: s, raw };
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Bytes read at once by headerBlocks(). */
const HEADER_WINDOW = 256 * 1024;

/** Bytes start..end of the file; a file cut short meanwhile is an error of the message. */
export async function readRange(fh: FileHandle, start: number, end: number, file: string): Promise<Buffer> {
  const out = Buffer.allocUnsafe(end - start);
  let at = 0;
  try {
    while (at < out.length) {
      const { bytesRead } = await fh.read(out, at, out.length - at, start + at);
      if (bytesRead === 0) throw new MailferryError('message', `mbox ${file}: message at ${start} cut short`);
      at += bytesRead;
    }
  } catch (e: unknown) {
    throw localError('message', e, `message at ${start} in ${file}`);
  }
  return out;
}
