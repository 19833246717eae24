import { createHash } from 'node:crypto';
import { fingerprintOf } from '../../formats/fingerprint.js';
import type { ParsedName } from '../../formats/maildir-name.js';
import { openNoFollow } from '../../state/no-follow.js';

/**
 * A name's W= (the wire size its writer counted, ours and Dovecot's), trusted while its S= is the
 * file's size: a file changed in place since keeps its old name and is measured anew.
 */
export function wireSizeOf(parsed: ParsedName, fileSize: number): number | undefined {
  return parsed.wireSize !== undefined && parsed.size === fileSize ? parsed.wireSize : undefined;
}

const CR = 0x0d;
const LF = 0x0a;
/** Bytes read at a time, into one buffer reused for the whole file. */
const CHUNK = 64 * 1024;

/**
 * The content key of a Maildir file (formats/fingerprint.ts: sha256 of its header block as stored,
 * LF form, and its wire size), streamed: the header block is hashed as it is read, never held
 * (a file without a blank line is all header), and every read goes into one buffer, so memory is
 * one chunk whatever the size (a stream's fresh chunk per read would pile up as garbage: a 30 MB
 * file raised the peak RSS by 29 MiB). With `wireSize` known (a trusted W=) reading stops after
 * the header block; without it the whole file is read once to count its line ends.
 */
export async function fileKey(file: string, wireSize?: number): Promise<string> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  let size = 0;
  let prevCr = false;
  /** The last bytes of the header read so far (at most 3), not hashed yet: a blank line may straddle reads. */
  let held = Buffer.alloc(0);
  let headerDone = false;
  const fh = await openNoFollow(file, 'r');
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      if (!headerDone) {
        const end = headerEnd(held, chunk);
        if (end !== -1) {
          hash.update(held);
          hash.update(chunk.subarray(0, end - held.length));
          held = Buffer.alloc(0);
          headerDone = true;
          if (wireSize !== undefined) break;
        } else if (chunk.length >= 3) {
          hash.update(held);
          hash.update(chunk.subarray(0, chunk.length - 3));
          held = Buffer.from(chunk.subarray(chunk.length - 3));
        } else {
          const both = Buffer.concat([held, chunk]);
          const cut = Math.max(0, both.length - 3);
          hash.update(both.subarray(0, cut));
          held = Buffer.from(both.subarray(cut));
        }
      }
      size += chunk.length;
      for (let pos = chunk.indexOf(LF); pos !== -1; pos = chunk.indexOf(LF, pos + 1)) {
        if (pos === 0 ? !prevCr : chunk[pos - 1] !== CR) size++;
      }
      prevCr = chunk[chunk.length - 1] === CR;
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
  hash.update(held);
  return fingerprintOf(hash, wireSize ?? size);
}

/**
 * Where the header block of `held` + `chunk` ends (after its first blank line, as headerBlock()
 * cuts it), counted from the start of `held`, or -1. `held` (at most 3 bytes) was searched
 * before, so a blank line starting in it ends in the first 3 bytes of `chunk`.
 */
function headerEnd(held: Buffer, chunk: Buffer): number {
  const junction = held.length === 0 ? undefined : Buffer.concat([held, chunk.subarray(0, 3)]);
  const first = (p: string): number => {
    const j = junction?.indexOf(p) ?? -1;
    if (j !== -1 && j < held.length) return j;
    const c = chunk.indexOf(p);
    return c === -1 ? -1 : held.length + c;
  };
  const lflf = first('\n\n');
  const crlf = first('\r\n\r\n');
  if (crlf !== -1 && (lflf === -1 || crlf < lflf)) return crlf + 4;
  return lflf === -1 ? -1 : lflf + 2;
}
