import { Readable } from 'node:stream';
import { MailferryError } from '../../domain/errors.js';
import { RETRY, sleep } from '../../domain/retry.js';
import type { Logger } from '../../log/logger.js';

/**
 * A large message's body as a stream of partial fetches (`UID FETCH uid BODY.PEEK[]<start.length>`,
 * RFC 3501 6.4.5), one chunk at a time as the consumer reads (backpressure: at most one chunk in
 * flight and the stream's buffer in memory), resumed where it stopped when the connection is lost.
 *
 * - Each chunk asked for is twice the last one, from `chunk` up to `maxChunk`, as TCP's slow start
 *   grows its window: imapflow runs one command at a time, so every chunk costs a round trip, and
 *   over a 100 ms round trip 1 MiB chunks ran at a seventh of the link's speed (issue 21: 33
 *   waits for a 33 MB message, 10 with chunks up to 4 MiB). A chunk cut off is lost whole
 *   (imapflow hands out no part of a literal), so after a lost connection the message goes on in
 *   `chunk`s without growing again: a link that drops now and then loses at most that much per cut.
 *
 * - A lost connection (a retryable error of `read`) is not the end: `reconnect()` gets a fresh
 *   connection with the folder open under the same UIDVALIDITY, and the next chunk is asked from
 *   the first byte not yet received, so the bytes already handed on (in the sink's temporary file)
 *   are never fetched again, and a link that drops every few MB still brings the message whole.
 *   The first resume is at once, further ones after a backoff; RETRY.attempts resumes in a row
 *   without a byte of progress fail the stream with the last error (the batch is then retried).
 * - The end is a chunk shorter than asked. The bytes received must add up to RFC822.SIZE when the
 *   stream was resumed (the pieces then come from different sessions): otherwise the stream fails
 *   (retryable) instead of ending, and `onMismatch` is told, so that the message is fetched whole
 *   next time. Without a resume a size off RFC822.SIZE is taken as the server sent it (some
 *   servers count differently), as a whole-message FETCH takes it.
 * - Bounded: bytes past `limit` (RFC822.SIZE plus a tolerance, or --max-message-size) fail the
 *   stream with a `message` error (that message is skipped and reported), however the server
 *   keeps sending full chunks.
 * - Every error the stream fails with is a MailferryError (the source's: a sink tells it from its
 *   own write errors); a message gone meanwhile fails it as retryable, and the batch's
 *   reconciliation then finds it gone.
 * - Destroyed by its consumer (the sink cannot write, the run is interrupted), it stops at once:
 *   `abandon()` drops a connection that still has a chunk in flight, so nothing waits for it.
 */
export interface ChunkReader {
  /** Up to `length` bytes of the message from `start`; false when the message is not there. */
  read(start: number, length: number): Promise<Buffer | false>;
  /** A fresh connection with the folder open, for the next `read`, in place of a lost one. */
  reconnect(): Promise<void>;
  /** The stream was destroyed with a `read` in flight: drop that connection. */
  abandon(): void;
}

export interface ResumableOptions {
  /** The first chunk, already read (a message gone before it is simply not streamed). */
  first: Buffer;
  /** RFC822.SIZE. */
  size: number;
  /** The first chunk's length (that of `first` when asked for), and the least asked for. */
  chunk: number;
  /** The largest chunk asked for (default `chunk`: no growth). */
  maxChunk?: number;
  /** The most bytes the message may have (drivers/message-limit.ts). */
  limit?: number;
  signal: AbortSignal;
  log: Logger;
  /** Names the message in errors and logs, e.g. `INBOX message 42`. */
  what: string;
  /** false: a lost connection fails the stream (a message whose resumed bytes did not add up once). */
  resume: boolean;
  /** Told when a resumed message's bytes do not add up to its size. */
  onMismatch?: () => void;
  /** Pause before the second and later resumes in a row (doubling); default RETRY.baseMs. */
  baseMs?: number;
}

export function resumableBody(reader: ChunkReader, opts: ResumableOptions): Readable {
  return new ResumableBody(reader, opts);
}

class ResumableBody extends Readable {
  private offset = 0;
  private resumed = 0;
  private reading = false;
  private ended = false;
  /** The length of the next chunk asked for; it stops growing after a lost connection. */
  private ask: number;

  constructor(
    private readonly reader: ChunkReader,
    private readonly opts: ResumableOptions,
  ) {
    super({ highWaterMark: opts.chunk });
    this.ask = opts.chunk;
    this.offset = opts.first.length;
    this.push(opts.first);
    if (this.done(opts.first, 0, opts.chunk)) this.finish();
  }

  /** One chunk per call: Node calls again once it is pushed and the consumer wants more. */
  override _read(): void {
    if (this.reading || this.ended) return;
    this.reading = true;
    this.next().then(
      ({ b, asked }) => {
        this.reading = false;
        if (this.destroyed) return;
        const start = this.offset;
        this.offset += b.length;
        try {
          const last = this.done(b, start, asked);
          this.push(b);
          if (last) this.finish();
        } catch (e: unknown) {
          this.destroy(e as Error);
        }
      },
      (e: unknown) => {
        this.reading = false;
        this.destroy(e instanceof MailferryError ? e : new MailferryError('protocol', `${this.opts.what}: ${String(e)}`, { cause: e, retryable: true }));
      },
    );
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (this.reading) this.reader.abandon();
    this.ended = true;
    cb(err);
  }

  /** Whether `b`, read from `start` when `asked` bytes were asked for, was the last chunk; else the next one grows. */
  private done(b: Buffer, start: number, asked: number): boolean {
    if (start + b.length > (this.opts.limit ?? Infinity)) {
      throw new MailferryError('message', `${this.opts.what}: the server sent more than ${this.opts.limit ?? 0} bytes for it, larger than announced (RFC822.SIZE ${this.opts.size}) or over --max-message-size`);
    }
    if (b.length > asked) {
      // A server that ignores the partial range sends the whole message: complete if asked from 0.
      if (start === 0) return true;
      throw new MailferryError('protocol', `${this.opts.what}: the server ignored a partial fetch from byte ${start}`, { retryable: true });
    }
    if (b.length < asked) return true;
    if (this.resumed === 0) this.ask = Math.min(asked * 2, Math.max(this.opts.chunk, this.opts.maxChunk ?? this.opts.chunk));
    return false;
  }

  private finish(): void {
    if (this.resumed > 0 && this.offset !== this.opts.size) {
      this.opts.onMismatch?.();
      throw new MailferryError('protocol', `${this.opts.what}: ${this.offset} bytes received in ${this.resumed + 1} sessions, RFC822.SIZE ${this.opts.size}; fetched whole next time`, {
        retryable: true,
      });
    }
    this.ended = true;
    this.push(null);
  }

  /** The next chunk, resuming on a fresh connection when this one is lost. */
  private async next(): Promise<{ b: Buffer; asked: number }> {
    let failures = 0;
    for (;;) {
      if (this.opts.signal.aborted) throw new MailferryError('interrupted', 'interrupted');
      // Destroyed during a backoff: no new connection, no further chunk.
      if (this.destroyed) throw new MailferryError('protocol', `${this.opts.what}: stream closed`);
      let b: Buffer | false;
      try {
        b = await this.reader.read(this.offset, this.ask);
      } catch (e: unknown) {
        if (this.destroyed) throw e;
        if (this.opts.signal.aborted) throw new MailferryError('interrupted', 'interrupted', { cause: e });
        if (!this.opts.resume || !(e instanceof MailferryError) || !e.retryable || ++failures > RETRY.attempts) throw e;
        this.opts.log.debug(`${this.opts.what}: ${e.message} at byte ${this.offset} of ${this.opts.size}; resuming from there on a new connection`);
        if (failures > 1) await sleep((this.opts.baseMs ?? RETRY.baseMs) * 2 ** (failures - 2), this.opts.signal);
        this.resumed++;
        this.ask = this.opts.chunk;
        await this.reconnect();
        continue;
      }
      // Gone meanwhile: the batch fails, and its reconciliation finds the message gone.
      if (b === false) throw new MailferryError('network', `${this.opts.what}: gone from the server during its download`, { retryable: true });
      return { b, asked: this.ask };
    }
  }

  private async reconnect(): Promise<void> {
    try {
      await this.reader.reconnect();
    } catch (e: unknown) {
      // A failed login is tried again by the next read's turn, as a lost connection is.
      if (!(e instanceof MailferryError) || !e.retryable) throw e;
    }
  }
}
