import { Readable, Transform } from 'node:stream';
import type { MessageMeta } from '../domain/message.js';
import { sleep } from '../domain/retry.js';
import type { Fetched, Source } from './source.js';
import { SourceWrapper } from './wrapper.js';

/**
 * `--max-bytes-per-second`: messages are handed on no faster than the rate, over all connections
 * together, with a burst of one second's worth. A small message waits before it is yielded; a
 * streamed one is paced chunk by chunk. The next batch is asked for only when this one is
 * consumed, so the server's sending is held to the rate on average (not per TCP segment: within
 * a batch the bytes arrive as fast as the network brings them).
 */
export class RateLimiter {
  /** When the bytes taken so far will have been "sent" at the rate (ms since the epoch). */
  private next = 0;

  constructor(readonly bytesPerSecond: number, private readonly now: () => number = Date.now) {}

  /** Waits until `n` more bytes are within the rate. */
  async take(n: number, signal: AbortSignal): Promise<void> {
    const now = this.now();
    this.next = Math.max(this.next, now) + (n * 1000) / this.bytesPerSecond;
    const wait = this.next - now - 1000;
    if (wait > 0) await sleep(wait, signal);
  }
}

export class RateLimitedSource extends SourceWrapper {
  constructor(inner: Source, private readonly limiter: RateLimiter) {
    super(inner);
  }

  override async *fetch(batch: readonly MessageMeta[], signal: AbortSignal): AsyncIterable<Fetched> {
    for await (const f of this.inner.fetch(batch, signal)) {
      if (Buffer.isBuffer(f.body)) {
        await this.limiter.take(f.body.length, signal);
        yield f;
      } else yield { meta: f.meta, body: this.paced(f.body, signal) };
    }
  }

  private paced(body: Readable, signal: AbortSignal): Readable {
    const limiter = this.limiter;
    const out = new Transform({
      transform(chunk: Buffer, _enc, done): void {
        limiter.take(chunk.length, signal).then(() => done(null, chunk), done);
      },
    });
    body.on('error', (e) => out.destroy(e));
    return body.pipe(out);
  }
}
