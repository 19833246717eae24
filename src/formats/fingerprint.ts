import { createHash } from 'node:crypto';
import { ArchiveEncoder } from './encoder.js';

/**
 * A content key that identifies one message across a UIDVALIDITY change without fetching bodies:
 * sha256 of its header block in LF form, and its size on the wire (CRLF). Two different messages
 * with the same headers and size are vanishingly rare; duplicates of the same message are counted
 * as a multiset by the caller, so each archived copy matches one server copy.
 */
export function fingerprintKey(headerLf: Buffer, wireSize: number): string {
  return `${createHash('sha256').update(headerLf).digest('hex')}:${wireSize}`;
}

/** The header block of a message (up to and including the first empty line), in any line ending. */
export function headerBlock(message: Buffer): Buffer {
  const lflf = message.indexOf('\n\n');
  const crlf = message.indexOf('\r\n\r\n');
  if (crlf !== -1 && (lflf === -1 || crlf < lflf)) return message.subarray(0, crlf + 4);
  if (lflf !== -1) return message.subarray(0, lflf + 2);
  return message;
}

export function toLf(b: Buffer): Buffer {
  return Buffer.concat(ArchiveEncoder.encode(b, false).parts);
}

/** Size of an LF archive file once sent as CRLF: every LF not already after a CR becomes two bytes. */
export function wireSizeOfLf(b: Buffer): number {
  let n = b.length;
  let pos = 0;
  for (;;) {
    const nl = b.indexOf(0x0a, pos);
    if (nl === -1) return n;
    if (nl === 0 || b[nl - 1] !== 0x0d) n++;
    pos = nl + 1;
  }
}
