import { openNoFollow } from '../state/no-follow.js';
import { flagsFromMetadata, parseLabelsHeader } from './mbox.js';
import { unquoteMboxrd } from './encoder.js';

/**
 * Reads an mboxrd file as written by our mbox sink (and, best effort, any mboxrd/mboxo file):
 * yields each message with its From_ line, flags from our metadata headers, and the original bytes
 * (LF, unquoted, our metadata lines removed). One message is held in memory at a time (the tests
 * use it as the reference; the mbox Source and the mbox Sink's re-match index with MboxScanner
 * below, holding none).
 * `noEol` holds the From_ offsets of messages that had no final newline (from the archive state).
 */
export interface MboxEntry {
  readonly offset: number;
  readonly fromLine: string;
  readonly flags: Set<string>;
  /** Original message bytes, LF line endings. */
  readonly body: Buffer;
}

const META = [/^Status: ([A-Z]*)\n$/, /^X-Status: ([A-Z]*)\n$/, /^X-Keywords: ?(.*)\n$/];
/** The fourth metadata line of a labelled message (formats/mbox.ts), read only where the state says labels were written. */
const LABELS = /^X-Gmail-Labels: ?(.*)\n$/;

export async function* readMbox(
  path: string,
  noEol: ReadonlySet<number> = new Set(),
  start = 0,
  end?: number,
  labelled = false,
): AsyncGenerator<MboxEntry> {
  // Never through a link planted in the archive (state/no-follow.ts); the stream closes the handle.
  const fh = await openNoFollow(path, 'r');
  const stream = fh.createReadStream({ start, ...(end === undefined ? {} : { end: end - 1 }) });
  let carry = Buffer.alloc(0);
  let offset = start;
  let current: { offset: number; fromLine: string; lines: Buffer[] } | null = null;
  const finish = (): MboxEntry | null => {
    if (current === null) return null;
    return parseEntry(current.offset, current.fromLine, current.lines, noEol.has(current.offset), labelled);
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const b = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
    let pos = 0;
    for (;;) {
      const nl = b.indexOf(0x0a, pos);
      if (nl === -1) break;
      const line = b.subarray(pos, nl + 1);
      if (line.length >= 5 && line.subarray(0, 5).toString('latin1') === 'From ') {
        const done = finish();
        if (done) yield done;
        current = { offset: offset + pos, fromLine: line.toString('latin1').trimEnd(), lines: [] };
      } else if (current !== null) {
        current.lines.push(line);
      }
      pos = nl + 1;
    }
    offset += pos;
    carry = Buffer.from(b.subarray(pos));
  }
  if (current !== null && carry.length > 0) current.lines.push(carry);
  const last = finish();
  if (last) yield last;
}

function parseEntry(offset: number, fromLine: string, lines: Buffer[], noEol: boolean, labelled: boolean): MboxEntry {
  const { skip, flags } = framing(lines, labelled, true) ?? NOT_OURS;
  let body = Buffer.concat(lines.slice(skip));
  // The separator: one empty line before the next From_ (or end of file).
  if (body.length > 0 && body[body.length - 1] === 0x0a) body = body.subarray(0, body.length - 1);
  if (noEol && body.length > 0 && body[body.length - 1] === 0x0a) body = body.subarray(0, body.length - 1);
  return { offset, fromLine, flags, body: unquoteMboxrd(body) };
}

const NOT_OURS = { skip: 0, flags: new Set<string>() };

/**
 * How many of a message's first lines (after its From_ line) are our metadata, and the flags they
 * carry: the three lines Status, X-Status, X-Keywords in this order (else none is ours: every line
 * is the message's), and in a labelled folder an X-Gmail-Labels line after them. Undefined when
 * more lines are needed to tell (`final`: there are no more).
 */
function framing(lines: readonly Buffer[], labelled: boolean, final: boolean): { skip: number; flags: Set<string>; labels?: string[] } | undefined {
  const meta: string[] = [];
  for (let i = 0; i < META.length && i < lines.length; i++) {
    const m = META[i]?.exec((lines[i] as Buffer).toString('latin1'));
    if (!m) return NOT_OURS;
    meta.push(m[1] ?? '');
  }
  if (meta.length < META.length) return final ? NOT_OURS : undefined;
  const flags = flagsFromMetadata(meta[0] ?? '', meta[1] ?? '', meta[2] ?? '');
  if (!labelled) return { skip: 3, flags };
  const fourth = lines[3];
  if (fourth === undefined) return final ? { skip: 3, flags } : undefined;
  const labels = LABELS.exec(fourth.toString('utf8'));
  return labels === null ? { skip: 3, flags } : { skip: 4, flags, labels: parseLabelsHeader(labels[1] ?? '') };
}

/**
 * Where one message lies in an mbox file, found without holding it: what `MboxScanner` gives.
 * `start`..`end` are the message's own bytes in the file (LF, mboxrd-quoted): after the From_ line
 * and our metadata lines, before the separating empty line (and before the LF added to a message
 * that had none: the state's `noEol`). Read that range and un-quote it (unquoteMboxrd, or
 * MboxWireStream for the wire form) and you have readMbox's `body`.
 */
export interface MboxSpan {
  /** Offset of the From_ line (the message's id in an archive). */
  readonly offset: number;
  readonly fromLine: string;
  readonly flags: ReadonlySet<string>;
  readonly start: number;
  readonly end: number;
  /** End of the header block (headerBlock of the un-quoted message: up to the first blank line, else `end`). */
  readonly headerEnd: number;
  /** Size on the wire: un-quoted, LF -> CRLF (wireSizeOfLf of the body). */
  readonly size: number;
  /** A labelled folder's message: the labels of its X-Gmail-Labels line (sorted, Gmail's names). */
  readonly labels?: readonly string[];
}

/** Longest line kept to be read as a From_ or metadata line; a longer one is a message line. */
const LINE_CAP = 256 * 1024;

interface Line {
  readonly start: number;
  readonly len: number;
  readonly endsLf: boolean;
  /** Ends in CR LF. */
  readonly crLf: boolean;
  /** Matches /^>+From / (mboxrd-quoted). */
  readonly quoted: boolean;
  /** The line's bytes (at most LINE_CAP), when they were kept. */
  readonly text: Buffer;
}

/** One message being scanned: its first lines until the framing is known, then running counts. */
class Scanned {
  private pending: Line[] = [];
  private framed: { skip: number; flags: Set<string>; labels?: string[] } | undefined;
  private start = -1;
  private quoted = 0;
  private bareLf = 0;
  private headerEnd: number | undefined;
  private last: Line | undefined;
  private prev: Line | undefined;

  constructor(
    readonly offset: number,
    readonly fromLine: string,
    private readonly labelled: boolean,
  ) {}

  /** While this is true, every line's bytes are kept for framing(). */
  get framing(): boolean {
    return this.framed === undefined;
  }

  line(l: Line): void {
    if (this.framed !== undefined) return this.body(l);
    this.pending.push(l);
    this.decide(false);
  }

  private decide(final: boolean): void {
    this.framed = framing(
      this.pending.map((p) => p.text),
      this.labelled,
      final,
    );
    if (this.framed === undefined) return;
    for (const p of this.pending.slice(this.framed.skip)) this.body(p);
    this.pending = [];
  }

  private body(l: Line): void {
    if (this.start < 0) this.start = l.start;
    if (l.quoted) this.quoted++;
    if (l.endsLf && !l.crLf) this.bareLf++;
    // headerBlock(): the first "\n\n" or "\r\n\r\n" (line by line: an empty line after a line,
    // or a CRLF line after a line ending in CRLF) ends the header block.
    if (this.headerEnd === undefined) {
      if (l.len === 1 && l.endsLf && l.start > this.start) this.headerEnd = l.start + 1;
      else if (l.len === 2 && l.crLf && this.last?.crLf === true) this.headerEnd = l.start + 2;
    }
    this.prev = this.last;
    this.last = l;
  }

  finish(regionEnd: number, noEol: boolean): MboxSpan {
    if (this.framed === undefined) this.decide(true);
    const start = this.start < 0 ? regionEnd : this.start;
    let end = regionEnd;
    let bare = this.bareLf;
    // The separator's LF, then (noEol) the LF we added: off, as readMbox takes them off.
    const last = this.last;
    if (last?.endsLf === true) {
      end--;
      if (!last.crLf) bare--;
      const prev = this.prev;
      if (noEol && last.len === 1 && prev !== undefined) {
        end--;
        if (!prev.crLf) bare--;
      }
    }
    const headerEnd = this.headerEnd === undefined || this.headerEnd > end ? end : this.headerEnd;
    const flags = this.framed?.flags ?? NOT_OURS.flags;
    const labels = this.framed?.labels;
    return { offset: this.offset, fromLine: this.fromLine, flags, start, end, headerEnd, size: end - start - this.quoted + bare, ...(labels === undefined ? {} : { labels }) };
  }
}

/**
 * Indexes an mbox file chunk by chunk, as readMbox reads it, but keeping no message: only the
 * current line's first bytes (From_ and metadata lines, up to LINE_CAP), and per message a few
 * counts. Feed it the file from offset 0 (`push`), then `finish(end)`; each returns the messages
 * it completed. Equal to readMbox however the file is cut (test/unit/mbox-scan.test.ts).
 */
export class MboxScanner {
  private at = 0;
  private current: Scanned | null = null;
  private lineStart = 0;
  private lineLen = 0;
  private prevByte = -1;
  // The /^>*From / match of the current line's start: ">" count, "From " bytes matched, verdict
  // (0 open, 1 matched, 2 not).
  private gts = 0;
  private k = 0;
  private verdict = 0;
  private kept: Buffer[] = [];
  private keptLen = 0;

  constructor(
    private readonly noEol: ReadonlySet<number> = new Set(),
    private readonly labelled = false,
  ) {}

  push(b: Buffer): MboxSpan[] {
    const out: MboxSpan[] = [];
    let i = 0;
    while (i < b.length) {
      if (this.lineLen === 0) this.lineStart = this.at + i;
      this.matchHead(b, i);
      const nl = b.indexOf(LF, i);
      const stop = nl === -1 ? b.length : nl + 1;
      if (this.keeping() && this.keptLen < LINE_CAP) {
        const piece = Buffer.from(b.subarray(i, Math.min(stop, i + LINE_CAP - this.keptLen)));
        this.kept.push(piece);
        this.keptLen += piece.length;
      } else if (!this.keeping() && this.keptLen > 0) {
        this.kept = [];
        this.keptLen = 0;
      }
      this.lineLen += stop - i;
      if (nl !== -1) {
        const before = nl > i ? (b[nl - 1] as number) : this.prevByte;
        this.endLine(true, this.lineLen >= 2 && before === CR, out);
      }
      this.prevByte = b[stop - 1] as number;
      i = stop;
    }
    this.at += b.length;
    return out;
  }

  /** The input ended at `end` (a last line without LF is a message line, never a From_ line). */
  finish(): MboxSpan[] {
    const out: MboxSpan[] = [];
    if (this.lineLen > 0) this.endLine(false, false, out);
    if (this.current !== null) out.push(this.current.finish(this.at, this.noEol.has(this.current.offset)));
    this.current = null;
    return out;
  }

  /** The line's bytes are needed: it may be a From_ line, or it is one of a message's first lines. */
  private keeping(): boolean {
    return (this.gts === 0 && this.verdict !== 2) || (this.current?.framing ?? false);
  }

  private matchHead(b: Buffer, from: number): void {
    for (let i = from; i < b.length && this.verdict === 0; i++) {
      const c = b[i];
      if (this.k === 0 && c === GT) this.gts++;
      else if (c === FROM[this.k]) {
        if (++this.k === FROM.length) this.verdict = 1;
      } else this.verdict = 2;
    }
  }

  private endLine(endsLf: boolean, crLf: boolean, out: MboxSpan[]): void {
    const text = this.keptLen === 0 ? EMPTY : this.kept.length === 1 ? (this.kept[0] as Buffer) : Buffer.concat(this.kept, this.keptLen);
    const line: Line = { start: this.lineStart, len: this.lineLen, endsLf, crLf, quoted: this.verdict === 1 && this.gts > 0, text };
    if (endsLf && this.verdict === 1 && this.gts === 0) {
      if (this.current !== null) out.push(this.current.finish(line.start, this.noEol.has(this.current.offset)));
      this.current = new Scanned(line.start, text.toString('latin1').trimEnd(), this.labelled);
    } else this.current?.line(line);
    this.lineLen = 0;
    this.gts = 0;
    this.k = 0;
    this.verdict = 0;
    this.kept = [];
    this.keptLen = 0;
  }
}

const LF = 0x0a;
const CR = 0x0d;
const GT = 0x3e;
const FROM = Buffer.from('From ');
const EMPTY = Buffer.alloc(0);

/** Every message of the committed part of an mbox file (up to `end`), as spans: MboxScanner over the file, read once. */
export async function* scanMbox(path: string, noEol: ReadonlySet<number>, end: number | undefined, labelled: boolean): AsyncGenerator<MboxSpan> {
  if (end === 0) return;
  const fh = await openNoFollow(path, 'r');
  const stream = fh.createReadStream({ start: 0, ...(end === undefined ? {} : { end: end - 1 }) });
  const scanner = new MboxScanner(noEol, labelled);
  for await (const chunk of stream as AsyncIterable<Buffer>) yield* scanner.push(chunk);
  yield* scanner.finish();
}
