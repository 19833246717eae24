import { MailferryError } from './errors.js';
import type { Logger } from '../log/logger.js';

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

export async function withRetry<T>(
  what: string,
  fn: () => Promise<T>,
  opts: { attempts: number; baseMs: number; log: Logger; signal: AbortSignal },
): Promise<T> {
  let failures = 0;
  let throttles = 0;
  for (;;) {
    try {
      return await fn();
    } catch (e: unknown) {
      if (!(e instanceof MailferryError) || !e.retryable || opts.signal.aborted) throw e;
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

/** Wait `ms`, or less when `signal` aborts (never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

/**
 * The retry policies every command uses, named once. RETRY: a dropped connection (or a batch that
 * failed for a retryable reason) is tried 5 times, after 1, 2, 4 and 8 s. RELAY_RETRY: a message
 * an SMTP relay defers (4xx) is tried 4 times, after 2, 4 and 8 s; then it waits for the next run.
 */
export const RETRY = { attempts: 5, baseMs: 1000 } as const;
export const RELAY_RETRY = { attempts: 4, baseMs: 2000 } as const;
