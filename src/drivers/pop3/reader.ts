import { Readable } from 'node:stream';
import { MailferryError } from '../../domain/errors.js';

/**
 * The wire side of POP3: status lines, multi-line bodies and their dot-stuffing (RFC 1939 §3),
 * read byte by byte from whatever chunks the socket delivers, and the two places a body can go
 * (one Buffer, or a Readable with backpressure). No sockets here: `Pop3Client` feeds the bytes.
 */
export interface Reply {
  /** '+' is a SASL continuation (RFC 5034). */
  readonly status: '+OK' | '-ERR' | '+';
  /** The rest of the line, without the response code. */
  readonly text: string;
  /** RFC 2449 extended response code in upper case: IN-USE, LOGIN-DELAY, SYS/TEMP, SYS/PERM, AUTH. */
  readonly code?: string;
}

/** Receives the decoded (unstuffed) body of a multi-line response. */
export interface BodyTarget {
  write(slice: Buffer): void;
  end(): void;
  fail(err: Error): void;
}

export interface Expectation {
  /** A +OK reply is followed by a dot-terminated body. */
  readonly multi: boolean;
  /** The whole response (status line and body) must be in within this many ms of its turn. */
  readonly deadlineMs?: number;
  /** Called with the status line; for a multi-line +OK, returns where the body goes. */
  onReply(reply: Reply): BodyTarget | undefined;
  onError(err: Error): void;
}

export interface RetrItem {
  readonly n: number;
  /** From LIST; decides Buffer or stream and bounds the pipeline by bytes. */
  readonly size?: number;
}

export type Retrieved = { readonly n: number; readonly body: Buffer | Readable } | { readonly n: number; readonly refused: string };

export const CR = 0x0d;
export const LF = 0x0a;
export const DOT = 0x2e;
export const LONE_CR = Buffer.from([CR]);
/** RFC 2449 §4 allows 512 octets per status line; be generous. */
export const MAX_LINE = 8192;
/**
 * Listings (CAPA, LIST, UIDL) and TOP headers: a million messages' UIDL is ~30 MB, so a reply of
 * more than 64 MB, more than a million lines or a line over 1 KB is a server fault (`protocol`),
 * never held whole.
 */
export const LISTING_LIMIT = 64 << 20;
export const LISTING_LINES = 1_000_000;
export const LISTING_LINE = 1024;
/** The bound of a RETR (decoded): its LIST size plus a small tolerance, never over `max` (drivers/message-limit.ts). */
export { MAX_MESSAGE_SIZE, messageLimit as retrLimit } from '../message-limit.js';
export const PIPELINE_DEPTH = 16;
export const PIPELINE_BYTES = 4 << 20;
export const STREAM_HWM = 1 << 20;

type DotState = 'line-start' | 'mid' | 'dot' | 'dot-cr' | 'done';

/**
 * The end of a multi-line response and its dot-stuffing (RFC 1939 §3): a line is what follows
 * CRLF; a line "." ends the body; any other line starting with "." loses that first dot. The CRLF
 * before the terminating "." belongs to the body. State carries over between `push` calls, so
 * the terminator and a stuffed dot may be split across chunks at any byte.
 */
export class DotDecoder {
  private state: DotState = 'line-start';
  /** In 'mid': the last byte seen was CR (an LF after it starts a new line). */
  private cr = false;

  get done(): boolean {
    return this.state === 'done';
  }

  /**
   * Decode `chunk`, handing body bytes to `emit` as slices of `chunk` (or a lone CR). Returns the
   * offset just past the terminator, or -1 when the body continues in the next chunk.
   */
  push(chunk: Buffer, emit: (slice: Buffer) => void): number {
    const n = chunk.length;
    let i = 0;
    let start = 0;
    while (i < n) {
      switch (this.state) {
        case 'line-start':
          if (chunk[i] === DOT) {
            if (i > start) emit(chunk.subarray(start, i));
            i++;
            start = i;
            this.state = 'dot';
          } else {
            this.state = 'mid';
            this.cr = false;
          }
          break;
        case 'mid': {
          const lf = chunk.indexOf(LF, i);
          if (lf < 0) {
            this.cr = chunk[n - 1] === CR;
            i = n;
            break;
          }
          const crlf = lf > i ? chunk[lf - 1] === CR : this.cr;
          i = lf + 1;
          if (crlf) this.state = 'line-start';
          else this.cr = false;
          break;
        }
        case 'dot':
          // A dot that is not followed by CRLF was stuffing: it is dropped (start is already past it).
          if (chunk[i] === CR) {
            i++;
            start = i;
            this.state = 'dot-cr';
          } else {
            this.state = 'mid';
            this.cr = false;
          }
          break;
        case 'dot-cr':
          if (chunk[i] === LF) {
            this.state = 'done';
            return i + 1;
          }
          // "." CR <not LF>: a stuffed line that begins with CR; give back the CR held so far.
          emit(LONE_CR);
          this.state = 'mid';
          this.cr = true;
          break;
        case 'done':
          return i;
      }
    }
    if (start < n && this.state !== 'dot' && this.state !== 'dot-cr') emit(chunk.subarray(start, n));
    return -1;
  }
}

export class Pop3ProtocolError extends Error {}

/** Bytes while no command is outstanding: typically a server's parting "-ERR ..." before it hangs up. */
export class Pop3Unsolicited extends Pop3ProtocolError {}

/** Parse a status line (without its LF). Throws Pop3ProtocolError unless it is +OK, -ERR or "+". */
export function parseReply(line: Buffer): Reply {
  // Status lines are ASCII by protocol; latin1 maps bytes 1:1 so nothing is lost for diagnostics.
  const s = line.toString('latin1').replace(/\r$/, '');
  const m = /^(\+OK|-ERR)(?:\s(.*))?$/i.exec(s);
  if (m !== null) {
    const status = (m[1] as string).toUpperCase() === '+OK' ? '+OK' : '-ERR';
    const rest = m[2] ?? '';
    const coded = /^\[([^\]]*)\]\s?(.*)$/.exec(rest);
    if (coded === null) return { status, text: rest };
    return { status, text: coded[2] ?? '', code: (coded[1] as string).toUpperCase() };
  }
  const cont = /^\+(?:\s(.*))?$/.exec(s);
  if (cont !== null) return { status: '+', text: cont[1] ?? '' };
  throw new Pop3ProtocolError(`unexpected response ${JSON.stringify(s.slice(0, 80))}`);
}

export const DISCARD: BodyTarget = { write() {}, end() {}, fail() {} };

/**
 * Splits the server's byte stream into responses, in the order the commands were sent (so
 * pipelined responses are matched by position). Pure: fed by the socket, or by tests.
 */
export class ResponseReader {
  private readonly queue: Expectation[] = [];
  private line: Buffer[] = [];
  private lineBytes = 0;
  private body: { target: BodyTarget; decoder: DotDecoder } | undefined;
  /** When the oldest pending response's turn began (its command sent, or the one before done). */
  private since = 0;

  get pending(): number {
    return this.queue.length;
  }

  expect(e: Expectation, now = Date.now()): void {
    if (this.queue.length === 0) this.since = now;
    this.queue.push(e);
  }

  /**
   * The oldest pending response and how long it has had, when that exceeds its deadline: a
   * server that sends a byte now and then is never silent long enough for an idle timeout.
   */
  overdue(now = Date.now()): { e: Expectation; ms: number } | undefined {
    const e = this.queue[0];
    if (e?.deadlineMs === undefined || now - this.since <= e.deadlineMs) return undefined;
    return { e, ms: now - this.since };
  }

  /** Time the consumer held the socket paused does not count against the server. */
  extend(ms: number): void {
    this.since += ms;
  }

  private done(): void {
    this.queue.shift();
    this.since = Date.now();
  }

  /** Throws Pop3ProtocolError on anything that is not a response to a pending command. */
  feed(chunk: Buffer): void {
    let buf = chunk;
    while (buf.length > 0) {
      const body = this.body;
      if (body !== undefined) {
        const end = body.decoder.push(buf, (s) => body.target.write(s));
        if (end < 0) return;
        this.body = undefined;
        this.done();
        buf = buf.subarray(end);
        body.target.end();
        continue;
      }
      const head = this.queue[0];
      if (head === undefined) throw new Pop3Unsolicited('unexpected data from the server');
      const lf = buf.indexOf(LF);
      if (lf < 0 || this.lineBytes + lf > MAX_LINE) {
        this.line.push(buf);
        this.lineBytes += buf.length;
        if (this.lineBytes > MAX_LINE) throw new Pop3ProtocolError('status line too long');
        return;
      }
      this.line.push(buf.subarray(0, lf));
      const raw = this.line.length === 1 ? (this.line[0] as Buffer) : Buffer.concat(this.line);
      this.line = [];
      this.lineBytes = 0;
      buf = buf.subarray(lf + 1);
      const reply = parseReply(raw);
      if (reply.status === '+OK' && head.multi) {
        this.body = { target: head.onReply(reply) ?? DISCARD, decoder: new DotDecoder() };
        continue;
      }
      this.done();
      head.onReply(reply);
    }
  }

  /** The connection is gone: the open body gets `bodyErr` (default `err`), every waiting command `err`. */
  failAll(err: Error, bodyErr: Error = err): void {
    const body = this.body;
    this.body = undefined;
    const waiting = this.queue.splice(0);
    body?.target.fail(bodyErr);
    for (const e of waiting) e.onError(err);
  }
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Marked handled: a command nobody awaits any more (a pipelined one after a failure) must not
  // crash the process; whoever awaits it still sees the rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** Collects a body into one Buffer; with a size hint it is preallocated, so it is held once. */
export class BufferBody implements BodyTarget {
  private readonly parts: Buffer[] = [];
  private buf: Buffer | undefined;
  private length = 0;
  readonly result = deferred<Buffer>();

  constructor(
    sizeHint: number | undefined,
    private readonly limit: number,
    private readonly what: string,
    /** What a reply over `limit` is: a message's fault, or the server's (a listing). */
    private readonly kind: 'message' | 'protocol' = 'message',
  ) {
    // +2: a message without a final newline comes with CRLF added (RFC 1939 §3 cannot express it).
    if (sizeHint !== undefined && sizeHint > 0 && sizeHint <= limit) this.buf = Buffer.allocUnsafe(sizeHint + 2);
  }

  write(slice: Buffer): void {
    if (this.length + slice.length > this.limit) {
      throw new MailferryError(this.kind, `${this.what} is larger than announced (over ${this.limit} bytes)`);
    }
    if (this.buf !== undefined && this.length + slice.length <= this.buf.length) {
      slice.copy(this.buf, this.length);
    } else {
      if (this.buf !== undefined) {
        this.parts.push(this.buf.subarray(0, this.length));
        this.buf = undefined;
      }
      this.parts.push(slice);
    }
    this.length += slice.length;
  }

  end(): void {
    this.result.resolve(this.buf !== undefined ? this.buf.subarray(0, this.length) : Buffer.concat(this.parts, this.length));
  }

  fail(err: Error): void {
    this.result.reject(err);
  }
}

export interface Flow {
  pause(): void;
  resume(): void;
  /** The consumer destroyed the stream before its end: the connection is mid-response. */
  abandon(): void;
}

/** A body as a Readable: when the reader falls behind, the socket is paused (backpressure). */
export class StreamBody implements BodyTarget {
  readonly stream: Readable;
  readonly finished = deferred<void>();
  private ended = false;
  private length = 0;

  constructor(
    private readonly flow: Flow,
    private readonly limit: number,
    private readonly what: string,
  ) {
    this.stream = new Readable({ highWaterMark: STREAM_HWM, read: () => flow.resume() });
    // Errors reach the consumer's own listeners and `finished`; this one only keeps an unread
    // stream from crashing the process when the connection drops.
    this.stream.on('error', () => undefined);
    this.stream.on('close', () => {
      if (!this.ended) flow.abandon();
    });
  }

  write(slice: Buffer): void {
    this.length += slice.length;
    if (this.length > this.limit) {
      throw new MailferryError('message', `${this.what} is larger than announced (over ${this.limit} bytes)`);
    }
    if (!this.stream.push(slice)) this.flow.pause();
  }

  end(): void {
    this.ended = true;
    this.stream.push(null);
    this.finished.resolve();
  }

  fail(err: Error): void {
    this.ended = true;
    this.stream.destroy(err);
    this.finished.reject(err);
  }
}

