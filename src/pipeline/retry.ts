import { MailferryError } from '../domain/errors.js';
import type { Logger } from '../log/logger.js';

/**
 * Retry an operation that failed with a retryable error (a dropped connection), with exponential
 * backoff. Other errors pass through at once. The work must be idempotent: ours is, because
 * nothing counts until a Sink commits.
 */
export async function withRetry<T>(
  what: string,
  fn: () => Promise<T>,
  opts: { attempts: number; baseMs: number; log: Logger; signal: AbortSignal },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e: unknown) {
      if (!(e instanceof MailferryError) || !e.retryable || attempt >= opts.attempts || opts.signal.aborted) throw e;
      const delay = opts.baseMs * 2 ** (attempt - 1);
      opts.log.warn(`${what}: ${e.message}; retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt + 1}/${opts.attempts})`);
      await sleep(delay, opts.signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
