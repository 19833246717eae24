import { createHash, type Hash } from 'node:crypto';
import { ArchiveEncoder } from './encoder.js';

/**
 * A content key that identifies one message across a UIDVALIDITY change without fetching bodies:
 * sha256 of its header block in LF form, and its size on the wire (CRLF). Two different messages
 * with the same headers and size are vanishingly rare; duplicates of the same message are counted
 * as a multiset by the caller, so each archived copy matches one server copy.
 */
export function fingerprintKey(headerLf: Buffer, wireSize: number): string {
  return fingerprintOf(createHash('sha256').update(headerLf), wireSize);
}

/** The same key from a sha256 fed the header block piece by piece (a file streamed). */
export function fingerprintOf(headerHash: Hash, wireSize: number): string {
  return `${headerHash.digest('hex')}:${wireSize}`;
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

/**
 * A message id made of content, for POP3 servers without UIDL (`--no-uidl`): the header block as
 * `TOP n 0` returns it, in LF form, hashed (sha256, first 128 bits), and the LIST size. The same
 * message gives the same key in every session as long as the server does not rewrite its headers.
 */
export function contentKey(header: Buffer, wireSize: number): string {
  const hash = createHash('sha256').update(toLf(headerBlock(header))).digest('hex').slice(0, 32);
  return `h:${hash}:${wireSize}`;
}

/**
 * Keys made unique in the order given (the maildrop's): the second and later copies of a key get
 * `#2`, `#3`, ... Exact duplicates are told apart by their order alone.
 */
export function numberDuplicates(keys: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return keys.map((key) => {
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    return n === 1 ? key : `${key}#${n}`;
  });
}
