import { Transform, type TransformCallback } from 'node:stream';

/**
 * Line endings, both directions, in this one file: the archive sinks write through ArchiveEncoder
 * (CRLF -> LF), the archive sources read through lfToCrlf / CrlfStream (LF -> CRLF; the mbox source
 * un-quotes too, unquoteMboxrd / MboxWireStream), so every
 * Source hands out the wire form and no Sink converts it again (`toLf` in fingerprint.ts is
 * ArchiveEncoder too).
 *
 * Streaming conversion of a message from the wire form (CRLF) to the archive form (LF), with
 * optional mboxrd quoting (RFC 4155 "mboxrd": every line matching /^>*From / gets one more ">").
 *
 * Works chunk by chunk with O(1) carried state (a pending CR, and the few bytes of a line start that
 * cannot be judged yet), so a 50 MB message is converted without being held whole.
 * Bare LF stays LF; a CR not followed by LF is kept. The conversion is reversible up to the
 * CRLF/LF distinction, which is what Dovecot, mutt and mbsync do with local files.
 */
const LF = 0x0a;
const CR = 0x0d;
const GT = 0x3e;
const F = 0x46;
const FROM = Buffer.from('From ');
const ONE_GT = Buffer.from('>');
const LONE_CR = Buffer.from([CR]);

export class ArchiveEncoder {
  private pendingCR = false;
  private carry: Buffer | null = null;
  private atLineStart = true;
  /** Bytes emitted so far. */
  bytes = 0;
  /**
   * What the bytes emitted so far measure once sent as CRLF (lfToCrlf: every LF not after a CR
   * counts two), counted only when `countWire` is set (a Maildir's W= field).
   */
  wireBytes = 0;
  /** Last byte emitted, -1 before any. */
  lastByte = -1;

  constructor(
    private readonly quoteFrom: boolean,
    private readonly countWire = false,
  ) {}

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.emitLf(this.toLf(chunk), out, false);
    return out;
  }

  end(): Buffer[] {
    const out: Buffer[] = [];
    const tail = this.pendingCR ? Buffer.from([CR]) : Buffer.alloc(0);
    this.pendingCR = false;
    this.emitLf(tail, out, true);
    return out;
  }

  /** Convenience for a whole message held in memory. */
  static encode(body: Buffer, quoteFrom: boolean): { parts: Buffer[]; bytes: number; endsWithLf: boolean } {
    const enc = new ArchiveEncoder(quoteFrom);
    const parts = [...enc.push(body), ...enc.end()];
    return { parts, bytes: enc.bytes, endsWithLf: enc.lastByte === LF };
  }

  /**
   * CRLF -> LF: the chunk is copied whole into a new buffer, which is then compacted in place
   * line by line with copyWithin (a memmove without Buffer.copy's per-call argument checks, about
   * three times faster for mail-sized lines); a chunk without CR is returned as is.
   */
  private toLf(chunk: Buffer): Buffer {
    if (this.pendingCR) {
      this.pendingCR = false;
      // The CR that ended the previous chunk was not part of a CRLF: it stays.
      if (chunk.length === 0 || chunk[0] !== LF) return Buffer.concat([LONE_CR, this.toLf(chunk)]);
    }
    let cr = chunk.indexOf(CR);
    if (cr === -1) return chunk;
    const out = Buffer.allocUnsafe(chunk.length);
    out.set(chunk);
    let o = cr;
    let pos = cr;
    while (cr !== -1) {
      if (cr > pos) {
        out.copyWithin(o, pos, cr);
        o += cr - pos;
      }
      if (cr === chunk.length - 1) {
        this.pendingCR = true;
        return out.subarray(0, o);
      }
      if (chunk[cr + 1] !== LF) out[o++] = CR; // a lone CR stays
      pos = cr + 1;
      cr = chunk.indexOf(CR, pos);
    }
    out.copyWithin(o, pos);
    o += chunk.length - pos;
    return out.subarray(0, o);
  }

  private emitLf(input: Buffer, out: Buffer[], final: boolean): void {
    let b = input;
    if (this.carry !== null) {
      b = Buffer.concat([this.carry, input]);
      this.carry = null;
    }
    if (!this.quoteFrom) {
      this.emit(b, out);
      return;
    }
    let segStart = 0;
    let ls: number = this.atLineStart ? 0 : nextLineStart(b, 0);
    while (ls !== -1 && ls < b.length) {
      let i = ls;
      while (i < b.length && b[i] === GT) i++;
      const avail = b.length - i;
      if (avail < FROM.length && !final && b.subarray(i).equals(FROM.subarray(0, avail))) {
        // Not enough bytes to judge this line start: keep them for the next chunk.
        this.emit(b.subarray(segStart, ls), out);
        this.carry = Buffer.from(b.subarray(ls));
        this.atLineStart = true;
        return;
      }
      if (avail >= FROM.length && b[i] === F && b.compare(FROM, 0, FROM.length, i, i + FROM.length) === 0) {
        this.emit(b.subarray(segStart, ls), out);
        this.emit(ONE_GT, out);
        segStart = ls;
      }
      ls = nextLineStart(b, ls);
    }
    this.emit(b.subarray(segStart), out);
    if (b.length > 0) this.atLineStart = b[b.length - 1] === LF;
  }

  private emit(b: Buffer, out: Buffer[]): void {
    if (b.length === 0) return;
    out.push(b);
    this.bytes += b.length;
    if (this.countWire) {
      let wire = b.length;
      for (let nl = b.indexOf(LF); nl !== -1; nl = b.indexOf(LF, nl + 1)) if ((nl === 0 ? this.lastByte : b[nl - 1]) !== CR) wire++;
      this.wireBytes += wire;
    }
    this.lastByte = b[b.length - 1] as number;
  }
}

function nextLineStart(b: Buffer, from: number): number {
  const nl = b.indexOf(LF, from);
  return nl === -1 ? -1 : nl + 1;
}

/**
 * LF -> CRLF for the wire (restore, APPEND). A CR already before the LF is left alone; `afterCr`:
 * the byte before `b` (the end of the previous chunk of a stream) was a CR. Wire-form input (no
 * bare LF, the usual case) is returned as it is, neither copied nor cut into pieces.
 */
export function lfToCrlf(b: Buffer, afterCr = false): Buffer {
  const bare = (nl: number): boolean => (nl === 0 ? !afterCr : b[nl - 1] !== CR);
  let nl = b.indexOf(LF);
  while (nl !== -1 && !bare(nl)) nl = b.indexOf(LF, nl + 1);
  if (nl === -1) return b;
  // Count, then copy the lines into one buffer: no per-line objects for a large message.
  let extra = 0;
  for (let i = nl; i !== -1; i = b.indexOf(LF, i + 1)) if (bare(i)) extra++;
  const out = Buffer.allocUnsafe(b.length + extra);
  let pos = 0;
  let at = 0;
  for (let i = nl; i !== -1; i = b.indexOf(LF, i + 1)) {
    if (!bare(i)) continue;
    at += b.copy(out, at, pos, i);
    out[at++] = CR;
    out[at++] = LF;
    pos = i + 1;
  }
  b.copy(out, at, pos);
  return out;
}

/**
 * LF -> CRLF as a stream, equal to lfToCrlf of the whole input however it is cut into chunks: an
 * LF is left alone when the byte before it (possibly the last one of the previous chunk) is a CR.
 */
export class CrlfStream extends Transform {
  private prevCr = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (chunk.length === 0) {
      done();
      return;
    }
    const out = lfToCrlf(chunk, this.prevCr);
    this.prevCr = chunk[chunk.length - 1] === CR;
    done(null, out);
  }
}

/** Undo mboxrd quoting of one LF message body: /^>+From / loses one ">". */
export function unquoteMboxrd(b: Buffer): Buffer {
  const u = new Unquoter();
  return Buffer.concat([...u.push(b), ...u.end()]);
}

/**
 * mboxrd un-quoting chunk by chunk (/^>+From / loses one ">"), equal to unquoteMboxrd of the whole
 * however the input is cut, with O(1) carried state: whether the next byte starts a line, whether a
 * line's first ">" is held back, and how many bytes of "From " after the ">" run are held back
 * (at most 4). The ">" run itself is passed on as it comes: every ">" but one is kept anyway, and
 * the one that may go is held, so a line of a million ">" costs nothing.
 */
export class Unquoter {
  private mode: 'start' | 'gts' | 'from' | 'rest' = 'start';
  /** Bytes of "From " matched and held back (from earlier chunks once a chunk ends). */
  private k = 0;

  push(b: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const put = (x: Buffer): void => {
      if (x.length > 0) out.push(x);
    };
    let seg = 0;
    let i = 0;
    // "From " bytes held from earlier chunks (none yet in this one).
    let heldK = this.mode === 'from' ? this.k : 0;
    while (i < b.length) {
      if (this.mode === 'start') {
        if (b[i] === GT) {
          put(b.subarray(seg, i)); // the held ">" is left out of every segment
          i++;
          seg = i;
          this.mode = 'gts';
        } else this.mode = 'rest';
      } else if (this.mode === 'gts') {
        while (i < b.length && b[i] === GT) i++;
        if (i === b.length) break;
        if (b[i] === F) {
          this.mode = 'from';
          this.k = 0;
          heldK = 0;
          put(b.subarray(seg, i));
          seg = i;
        } else {
          put(b.subarray(seg, i));
          put(ONE_GT); // not quoted: the held ">" goes back (among ">" only: order is moot)
          seg = i;
          this.mode = 'rest';
        }
      } else if (this.mode === 'from') {
        while (i < b.length && this.k < FROM.length && b[i] === FROM[this.k]) {
          i++;
          this.k++;
        }
        if (this.k === FROM.length) {
          put(FROM.subarray(0, heldK)); // quoted: the held ">" is dropped
          this.mode = 'rest';
        } else if (i < b.length) {
          put(ONE_GT);
          put(FROM.subarray(0, heldK));
          this.mode = 'rest';
        } else {
          return out; // undecided at the chunk's end: "From " bytes held (seg..end)
        }
      } else {
        const nl = b.indexOf(LF, i);
        if (nl === -1) break;
        i = nl + 1;
        this.mode = 'start';
      }
    }
    put(b.subarray(seg));
    return out;
  }

  /** The input ended: what is still held goes out unchanged (a line cut short is not quoted). */
  end(): Buffer[] {
    const out: Buffer[] = [];
    if (this.mode === 'gts' || this.mode === 'from') out.push(ONE_GT);
    if (this.mode === 'from' && this.k > 0) out.push(FROM.subarray(0, this.k));
    this.mode = 'start';
    this.k = 0;
    return out;
  }
}

/**
 * An mboxrd message body (LF, quoted) to the wire form as a stream: un-quoted (Unquoter), then
 * LF -> CRLF (as CrlfStream), chunk by chunk; equal to lfToCrlf(unquoteMboxrd(whole)).
 */
export class MboxWireStream extends Transform {
  private readonly unquote = new Unquoter();
  private prevCr = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.out(this.unquote.push(chunk));
    done();
  }

  override _flush(done: TransformCallback): void {
    this.out(this.unquote.end());
    done();
  }

  private out(parts: Buffer[]): void {
    for (const p of parts) {
      this.push(lfToCrlf(p, this.prevCr));
      this.prevCr = p[p.length - 1] === CR;
    }
  }
}
