/**
 * IMAP server responses as bytes (RFC 3501 §4 and §7, RFC 9051 the same), for the FETCH body reader
 * (imap-reader.ts). Two layers:
 *
 * - `ResponseReader` frames the byte stream into responses at any chunking. A response is its line
 *   text, cut where a literal `{n}` ends a line, plus the literals between. A literal is handed over
 *   without reassembly: the subarray of the socket chunk when it lies in one chunk, else one buffer
 *   of exactly n bytes filled once, or, when the caller's `LiteralPolicy` gives a `LiteralSink`,
 *   chunk by chunk as it arrives (a large body, never held whole). Lines are bounded by `maxLine`
 *   bytes and collected literals by `maxLiteral`; past either it throws `WireError`.
 * - `tokens`, `parseStatus` and `parseFetch` read a framed response: atoms (with `[...]` sections
 *   and `<n>` origins, so `BODY[]` is one atom), numbers, quoted strings with `\"` and `\\` escapes,
 *   literals (also `{0}`), NIL, and parenthesized lists; FETCH items in any order, unknown items
 *   skipped. Line text is latin1, so every byte survives.
 *
 * Nothing here does I/O; a test feeds it bytes split anywhere.
 */
const LF = 0x0a;

export class WireError extends Error {}

/** Where a streamed literal's bytes go, in order; `end` after the last. */
export interface LiteralSink {
  write(chunk: Buffer): void;
  end(): void;
}

/** Asked when a literal of n bytes starts; `segments` is the response so far. undefined: collect it. */
export type LiteralPolicy = (n: number, segments: readonly string[]) => LiteralSink | undefined;

/** A literal that went to a LiteralSink instead of being collected. */
export interface Streamed {
  readonly streamed: number;
}

export interface Response {
  /** The line text (latin1, no CRLF); every segment but the last ends with its literal's `{n}`. */
  readonly segments: readonly string[];
  /** literals[i] follows segments[i]. */
  readonly literals: readonly (Buffer | Streamed)[];
}

interface OpenLiteral {
  readonly n: number;
  left: number;
  buf?: Buffer;
  piece?: Buffer;
  readonly sink?: LiteralSink;
}

const LITERAL_AT_END = /\{(\d{1,12})\}$/;

export class ResponseReader {
  private line: Buffer[] = [];
  private lineBytes = 0;
  private segments: string[] = [];
  private literals: (Buffer | Streamed)[] = [];
  private lit: OpenLiteral | undefined;

  constructor(
    private readonly onResponse: (r: Response) => void,
    private readonly policy: LiteralPolicy = () => undefined,
    private readonly maxLine = 1 << 20,
    private readonly maxLiteral = 64 << 20,
  ) {}

  /** True between responses (nothing of a next response read yet). */
  get idle(): boolean {
    return this.lit === undefined && this.lineBytes === 0 && this.segments.length === 0;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.lit !== undefined) {
        pos = this.literalBytes(chunk, pos);
        continue;
      }
      const lf = chunk.indexOf(LF, pos);
      if (lf === -1) {
        this.addLine(chunk.subarray(pos));
        return;
      }
      this.addLine(chunk.subarray(pos, lf + 1));
      pos = lf + 1;
      this.endLine();
    }
  }

  private addLine(b: Buffer): void {
    if (b.length === 0) return;
    this.lineBytes += b.length;
    if (this.lineBytes > this.maxLine) throw new WireError(`response line longer than ${this.maxLine} bytes`);
    this.line.push(b);
  }

  private endLine(): void {
    const raw = this.line.length === 1 ? (this.line[0] as Buffer) : Buffer.concat(this.line, this.lineBytes);
    this.line = [];
    this.lineBytes = 0;
    let end = raw.length - 1; // the LF
    if (end > 0 && raw[end - 1] === 0x0d) end--;
    const text = raw.toString('latin1', 0, end);
    this.segments.push(text);
    const m = LITERAL_AT_END.exec(text);
    if (m === null) {
      const r: Response = { segments: this.segments, literals: this.literals };
      this.segments = [];
      this.literals = [];
      this.onResponse(r);
      return;
    }
    const n = Number(m[1]);
    const sink = this.policy(n, this.segments);
    if (sink === undefined && n > this.maxLiteral) throw new WireError(`literal of ${n} bytes, more than ${this.maxLiteral} expected`);
    this.lit = sink === undefined ? { n, left: n } : { n, left: n, sink };
    if (n === 0) this.closeLiteral(this.lit);
  }

  private literalBytes(chunk: Buffer, pos: number): number {
    const lit = this.lit as OpenLiteral;
    const take = Math.min(lit.left, chunk.length - pos);
    const piece = chunk.subarray(pos, pos + take);
    if (lit.sink !== undefined) {
      lit.sink.write(piece);
    } else if (take === lit.n) {
      lit.piece = piece; // the whole literal in one chunk: no copy
    } else {
      lit.buf ??= Buffer.allocUnsafe(lit.n);
      piece.copy(lit.buf, lit.n - lit.left);
    }
    lit.left -= take;
    if (lit.left === 0) this.closeLiteral(lit);
    return pos + take;
  }

  private closeLiteral(lit: OpenLiteral): void {
    this.lit = undefined;
    if (lit.sink !== undefined) {
      this.literals.push({ streamed: lit.n });
      lit.sink.end();
    } else {
      this.literals.push(lit.piece ?? lit.buf ?? Buffer.alloc(0));
    }
  }
}

export type Token =
  | { readonly t: 'atom'; readonly v: string }
  | { readonly t: 'string'; readonly v: Buffer }
  | { readonly t: 'streamed'; readonly n: number }
  | { readonly t: 'nil' }
  | { readonly t: 'list'; readonly v: Token[] };

/** A read position in a response: segment index and offset. */
class Cursor {
  seg = 0;
  constructor(
    readonly r: Response,
    public pos: number,
  ) {}

  get text(): string {
    return this.r.segments[this.seg] ?? '';
  }

  skipSpaces(): void {
    while (this.text.charCodeAt(this.pos) === 0x20) this.pos++;
  }

  atEnd(): boolean {
    return this.pos >= this.text.length && this.seg >= this.r.segments.length - 1;
  }
}

/** The tokens of a response from offset `from` of its first segment up to its end. */
export function tokens(r: Response, from: number): Token[] {
  const c = new Cursor(r, from);
  const out: Token[] = [];
  for (;;) {
    c.skipSpaces();
    if (c.atEnd()) return out;
    if (c.text[c.pos] === ')') throw new WireError(`unbalanced ")" in "${c.text}"`);
    out.push(value(c));
  }
}

function value(c: Cursor): Token {
  c.skipSpaces();
  const text = c.text;
  const ch = text[c.pos];
  if (ch === undefined) throw new WireError('response ends where a value was expected');
  if (ch === '(') {
    c.pos++;
    const items: Token[] = [];
    for (;;) {
      c.skipSpaces();
      if (c.text[c.pos] === ')') {
        c.pos++;
        return { t: 'list', v: items };
      }
      if (c.atEnd()) throw new WireError('response ends inside a list');
      items.push(value(c));
    }
  }
  if (ch === '"') return quoted(c);
  if (ch === '{') return literal(c);
  const start = c.pos;
  let i = c.pos;
  while (i < text.length) {
    const k = text[i];
    if (k === ' ' || k === '(' || k === ')') break;
    if (k === '[') {
      const close = text.indexOf(']', i);
      if (close === -1) throw new WireError(`"[" without "]" in "${text}"`);
      i = close + 1;
      continue;
    }
    i++;
  }
  if (i === start) throw new WireError(`unexpected "${ch}" in "${text}"`);
  c.pos = i;
  const v = text.slice(start, i);
  return v.toUpperCase() === 'NIL' ? { t: 'nil' } : { t: 'atom', v };
}

function quoted(c: Cursor): Token {
  const text = c.text;
  let i = c.pos + 1;
  let s = '';
  let from = i;
  for (;;) {
    const k = text.charCodeAt(i);
    if (Number.isNaN(k)) throw new WireError(`unterminated quoted string in "${text}"`);
    if (k === 0x22) break;
    if (k === 0x5c) {
      s += text.slice(from, i);
      from = i + 1; // keep the escaped character, drop the backslash
      i += 2;
      continue;
    }
    i++;
  }
  s += text.slice(from, i);
  c.pos = i + 1;
  return { t: 'string', v: Buffer.from(s, 'latin1') };
}

function literal(c: Cursor): Token {
  const m = LITERAL_AT_END.exec(c.text);
  if (m === null || m.index !== c.pos) throw new WireError(`"{" that is not a literal in "${c.text}"`);
  const lit = c.r.literals[c.seg];
  if (lit === undefined) throw new WireError('literal missing');
  c.seg++;
  c.pos = 0;
  return Buffer.isBuffer(lit) ? { t: 'string', v: lit } : { t: 'streamed', n: lit.streamed };
}

export interface Status {
  readonly status: 'OK' | 'NO' | 'BAD' | 'BYE' | 'PREAUTH';
  /** The response code without brackets, e.g. `UIDVALIDITY 17`, `AUTHENTICATIONFAILED`. */
  readonly code?: string;
  readonly text: string;
}

const STATUS = /^(OK|NO|BAD|BYE|PREAUTH)(?: (?:\[([^\]]*)\] ?)?(.*))?$/i;

/** A status response's parts, from the text after the tag; undefined when it is not one. */
export function parseStatus(rest: string): Status | undefined {
  const m = STATUS.exec(rest);
  if (m === null) return undefined;
  const status = (m[1] as string).toUpperCase() as Status['status'];
  return m[2] === undefined ? { status, text: m[3] ?? '' } : { status, code: m[2], text: m[3] ?? '' };
}

export interface FetchItems {
  readonly seq: number;
  uid?: number;
  flags?: string[];
  internalDate?: string;
  size?: number;
  /** BODY[]: the bytes, or that it went to a LiteralSink, or null for NIL. */
  body?: Buffer | Streamed | null;
}

const FETCH_HEAD = /^\* (\d+) FETCH /i;

/** An untagged FETCH response's items, or undefined when `r` is not a FETCH. */
export function parseFetch(r: Response): FetchItems | undefined {
  const first = r.segments[0] ?? '';
  const m = FETCH_HEAD.exec(first);
  if (m === null) return undefined;
  const all = tokens(r, m[0].length);
  const list = all[0];
  if (all.length !== 1 || list?.t !== 'list') throw new WireError(`FETCH response without one item list: "${first}"`);
  const out: FetchItems = { seq: Number(m[1]) };
  const items = list.v;
  for (let i = 0; i < items.length; i += 2) {
    const name = items[i];
    const v = items[i + 1];
    if (name?.t !== 'atom' || v === undefined) throw new WireError(`malformed FETCH item list: "${first}"`);
    switch (name.v.toUpperCase()) {
      case 'UID':
        out.uid = numberOf(v, 'UID');
        break;
      case 'RFC822.SIZE':
        out.size = numberOf(v, 'RFC822.SIZE');
        break;
      case 'FLAGS':
        if (v.t !== 'list') throw new WireError('FLAGS is not a list');
        out.flags = v.v.map((f) => {
          if (f.t !== 'atom') throw new WireError('a flag is not an atom');
          return f.v;
        });
        break;
      case 'INTERNALDATE':
        if (v.t !== 'string') throw new WireError('INTERNALDATE is not a string');
        out.internalDate = v.v.toString('latin1');
        break;
      case 'BODY[]':
        if (v.t === 'string') out.body = v.v;
        else if (v.t === 'streamed') out.body = { streamed: v.n };
        else if (v.t === 'nil') out.body = null;
        else throw new WireError('BODY[] is not a string');
        break;
      default:
        break; // MODSEQ and the like: not ours
    }
  }
  return out;
}

function numberOf(t: Token, what: string): number {
  if (t.t !== 'atom' || !/^\d{1,15}$/.test(t.v)) throw new WireError(`${what} is not a number`);
  return Number(t.v);
}
