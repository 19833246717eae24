import { MailferryError } from './errors.js';

/**
 * Retry an operation that failed with a retryable error (a dropped connection), with exponential
 * backoff. Other errors pass through at once. The work must be idempotent: ours is, because
 * nothing counts until a Sink commits.
 *
 * A throttled server (an error with `retryAfterMs`: `NO [THROTTLED]`, Microsoft's "Suggested
 * Backoff Time") is waited out as long as it says, up to MAX_THROTTLE_WAIT_MS a time, and retried
 * up to MAX_THROTTLES times: being told to slow down is not a failure, so these retries do not use
 * up `attempts`.
 */
export const MAX_THROTTLES = 10;
export const MAX_THROTTLE_WAIT_MS = 10 * 60_000;

export interface RetryOptions {
  attempts: number;
  baseMs: number;
  /** Where a retry is said (the run's Logger is one); structural, so domain/ imports nothing of log/. */
  log: { warn(msg: string): void };
  signal: AbortSignal;
  /**
   * Which retryable errors this caller retries (default: all). The SMTP sink retries a relay's
   * 4xx here and leaves a dropped connection to the pipeline, which retries the whole batch.
   */
  retryOn?: (e: MailferryError) => boolean;
}

export async function withRetry<T>(what: string, fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  let failures = 0;
  let throttles = 0;
  for (;;) {
    try {
      return await fn();
    } catch (e: unknown) {
      if (!(e instanceof MailferryError) || !e.retryable || opts.retryOn?.(e) === false || opts.signal.aborted) throw e;
      let delay: number;
      let note: string;
      if (e.retryAfterMs !== undefined && throttles < MAX_THROTTLES) {
        throttles++;
        delay = Math.min(Math.max(e.retryAfterMs, 0), MAX_THROTTLE_WAIT_MS);
        note = `server asks to slow down; waiting ${(delay / 1000).toFixed(1)} s as told (${throttles}/${MAX_THROTTLES})`;
      } else {
        failures++;
        if (failures >= opts.attempts) throw e;
        delay = opts.baseMs * 2 ** (failures - 1);
        note = `retrying in ${(delay / 1000).toFixed(1)} s (attempt ${failures + 1}/${opts.attempts})`;
      }
      opts.log.warn(`${what}: ${e.message}; ${note}`);
      await sleep(delay, opts.signal);
    }
  }
}

/**
 * Wait `ms`, or less when `signal` aborts (never rejects). The abort listener is removed when the
 * time is up: a rate limiter sleeps once per chunk on the run's one signal, and listeners left
 * behind pile up (Node's MaxListenersExceededWarning on the progress line, and a leak).
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * The retry policies every command uses, named once. RETRY: a dropped connection (or a batch that
 * failed for a retryable reason) is tried 5 times, after 1, 2, 4 and 8 s. RELAY_RETRY: a message
 * an SMTP relay defers (4xx) is tried 4 times, after 2, 4 and 8 s; then it waits for the next run.
 */
export const RETRY = { attempts: 5, baseMs: 1000 } as const;
export const RELAY_RETRY = { attempts: 4, baseMs: 2000 } as const;

/**
 * Watch mode's reconnect policy (pipeline/watch.ts, drivers/imap/idle.ts): a transient fault is
 * waited out for ever, 1 s after the first failure, doubled after each one, at most 60 s; a
 * success starts again from 1 s.
 */
export const WATCH_BACKOFF = { baseMs: 1000, maxMs: 60_000 } as const;

/** The wait before attempt `failures + 1` of a capped exponential backoff. */
export function backoffMs(failures: number, policy: { baseMs: number; maxMs: number }): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(failures, 0), 30));
}
