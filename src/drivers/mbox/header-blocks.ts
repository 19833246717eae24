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

/**
 * Whether the state's recorded `end` still describes the file, `size` bytes long: the file is at
 * least that long, and what lies past `end` can only be our own interrupted append (a record
 * starts with its From_ line, so a torn one starts with "From " or a part of it, right after the
 * empty line that ends our last record). Anything else means another program rewrote the file
 * (a MUA expunged a message, say): `end` and the `noEol` offsets no longer point where they did,
 * and nothing past `end` may be cut.
 */
export async function stateFits(file: string, end: number, size: number): Promise<boolean> {
  if (size < end) return false;
  if (size === end) return true;
  const fh = await openNoFollow(file, 'r');
  try {
    const before = end === 0 ? Buffer.from('\n\n') : await readRange(fh, Math.max(0, end - 2), end, file);
    const past = await readRange(fh, end, Math.min(size, end + FROM.length), file);
    const framed = before[before.length - 1] === 0x0a && (end < 2 || before[0] === 0x0a);
    return framed && FROM.subarray(0, past.length).equals(past);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

const FROM = Buffer.from('From ');

/**
 * Without state that says whether a message had a final newline, the one it ends with may be
 * framing we added: its wire size without that LF (one byte less after a CR, else two), for a
 * second key; undefined when the message does not end in LF.
 */
export async function sizeWithoutFinalLf(fh: FileHandle, span: MboxSpan, file: string): Promise<number | undefined> {
  if (span.end <= span.start) return undefined;
  const tail = await readRange(fh, Math.max(span.start, span.end - 2), span.end, file);
  if (tail[tail.length - 1] !== 0x0a) return undefined;
  return span.size - (tail.length === 2 && tail[0] === 0x0d ? 1 : 2);
}
