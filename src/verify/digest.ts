import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';

/**
 * A message body's digests, read once and streamed (a Readable body is never held whole). Both
 * sides of a verify hand out the wire form (CRLF: the Source contract), so equal bytes give equal
 * `raw` digests. The other three name the unavoidable differences the copy is known to make, so
 * that they are reported as such and not as alterations:
 * - `nul`: every NUL byte read as 0x80 (Dovecot serves a stored NUL as 0x80, so a message restored
 *   or migrated into Dovecot comes back with 0x80 where the archive has NUL);
 * - `trimmed` / `nulTrimmed`: the same without one final CRLF (a message that ended without a
 *   newline gets one as mbox framing when the archive's state cannot say so; a POP3 server adds
 *   one, RFC 1939 §3).
 */
export interface Digests {
  raw: string;
  nul: string;
  trimmed: string;
  nulTrimmed: string;
  bytes: number;
}

export async function digestBody(body: Buffer | Readable): Promise<Digests> {
  const d = new Digester();
  if (Buffer.isBuffer(body)) d.update(body);
  else for await (const chunk of body as AsyncIterable<Buffer | string>) d.update(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return d.result();
}

/** Hashes everything but the last two bytes, held back until the end to tell a final CRLF apart. */
class Digester {
  private readonly raw: Hash = createHash('sha256');
  private readonly nul: Hash = createHash('sha256');
  private tail = Buffer.alloc(0);
  private bytes = 0;

  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    const all = this.tail.length === 0 ? chunk : Buffer.concat([this.tail, chunk]);
    const cut = Math.max(0, all.length - 2);
    this.feed(all.subarray(0, cut));
    this.tail = Buffer.from(all.subarray(cut));
  }

  private feed(b: Buffer): void {
    if (b.length === 0) return;
    this.raw.update(b);
    this.nul.update(b.includes(0) ? b.map((x) => (x === 0 ? 0x80 : x)) : b);
  }

  result(): Digests {
    const crlf = this.tail.length === 2 && this.tail[0] === 0x0d && this.tail[1] === 0x0a;
    const trimmed = crlf ? this.raw.copy().digest('hex') : undefined;
    const nulTrimmed = crlf ? this.nul.copy().digest('hex') : undefined;
    this.feed(this.tail);
    const raw = this.raw.digest('hex');
    const nul = this.nul.digest('hex');
    return { raw, nul, trimmed: trimmed ?? raw, nulTrimmed: nulTrimmed ?? nul, bytes: this.bytes };
  }
}

/**
 * How two bodies compare: `same`, a known difference (`nul`: NUL served as 0x80; `newline`: one
 * side has one final CRLF more), or `altered`.
 */
export function compareDigests(a: Digests, b: Digests): 'same' | 'nul' | 'newline' | 'altered' {
  if (a.raw === b.raw) return 'same';
  if (a.nul === b.nul) return 'nul';
  if (a.trimmed === b.raw || a.raw === b.trimmed || a.nulTrimmed === b.nul || a.nul === b.nulTrimmed) return 'newline';
  return 'altered';
}
