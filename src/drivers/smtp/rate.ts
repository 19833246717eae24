import { sleep } from '../../domain/retry.js';
import { MailferryError } from '../../domain/errors.js';
import type { SmtpSender } from './transport.js';

/**
 * `--rate N/s`, `N/m`, `N/h`: at most N messages handed to the relay per second, minute or hour, as
 * a wrapper around an SmtpSender (every attempt counts, retries of a 4xx too). Sends are spaced
 * evenly, each at least period/N after the one before, rather than in bursts of N: any window of
 * one period then holds at most N sends, which is what a relay's counter sees, whichever way it
 * counts. The first message goes at once.
 */
export interface Rate {
  count: number;
  perMs: number;
  text: string;
}

const UNITS: Record<string, number> = { s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, hour: 3_600_000 };

export function parseRate(text: string): Rate {
  const m = /^\s*(\d+(?:\.\d+)?)\s*\/\s*([a-z]+)\s*$/.exec(text.toLowerCase());
  const count = m === null ? NaN : Number(m[1]);
  const perMs = m === null ? undefined : UNITS[m[2] as string];
  if (perMs === undefined || !(count > 0)) {
    throw new MailferryError('usage', `--rate must be N/s, N/m or N/h (messages per second, minute or hour), e.g. 10/m, not "${text}"`);
  }
  return { count, perMs, text: text.trim() };
}

export function rateLimited(sender: SmtpSender, rate: Rate, signal: AbortSignal): SmtpSender {
  const interval = rate.perMs / rate.count;
  let last = -Infinity;
  let turns: Promise<void> = Promise.resolve();
  return {
    async send(envelope, raw) {
      // One turn after another, each at least `interval` after the previous one really began (a
      // late timer delays the rest, it never lets two sends come closer).
      const turn = turns.then(async () => {
        await sleepUntil(last + interval, signal);
        last = Date.now();
      });
      turns = turn;
      await turn;
      if (signal.aborted) throw new MailferryError('interrupted', 'interrupted; the state is consistent, rerun to resume');
      return sender.send(envelope, raw);
    },
    close: () => sender.close(),
  };
}

/** Wait until `at` (ms since the epoch), or less when `signal` aborts: the one `sleep` of domain/retry.ts. */
export function sleepUntil(at: number, signal: AbortSignal): Promise<void> {
  const ms = at - Date.now();
  return ms <= 0 ? Promise.resolve() : sleep(ms, signal);
}
