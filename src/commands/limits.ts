import { MailferryError } from '../domain/errors.js';
import { describeEndpoint } from '../endpoints/url.js';
import type { Logger } from '../log/logger.js';
import { formatBytes } from '../profiles/bytes.js';
import type { RunLimits } from '../profiles/resolve.js';
import type { RunReport } from '../report.js';
import { BudgetSource, DailyBudget } from '../sources/daily-budget.js';
import { RateLimitedSource, RateLimiter } from '../sources/rate-limit.js';
import type { Source } from '../sources/source.js';
import { stateDir } from '../state/dir.js';

/**
 * A command's limits (from provider profiles and flags) as wrappers around its source: one daily
 * budget per account and direction (the source's download, the target's upload), then the rate.
 * `finish` marks the report when a budget ran out (exit 8) and says which in the log.
 */
export interface Limited {
  source: Source;
  finish(report: RunReport): void;
  /** A refused login to a provider that takes no plain password says what it takes instead. */
  explain(e: unknown): unknown;
}

export async function withLimits(source: Source, limits: RunLimits, log: Logger): Promise<Limited> {
  for (const note of limits.notes) log.warn(note);
  if (limits.skip.length > 0) {
    log.info(`profile ${limits.profiles.join(', ')}: leaving out ${limits.skip.join(', ')} (they repeat messages kept in other folders; --all-folders keeps them)`);
  }
  let limited = source;
  const budgets: { budget: DailyBudget; account: string }[] = [];
  for (const b of limits.budgets) {
    const account = describeEndpoint(b.account);
    const budget = await DailyBudget.open(stateDir(), account, b.kind, b.bytes, log);
    log.info(`daily ${b.kind} budget ${formatBytes(budget.limit)} for ${account}, ${formatBytes(budget.used)} used today (${budget.path})`);
    budgets.push({ budget, account });
    limited = new BudgetSource(limited, budget);
  }
  if (limits.bytesPerSecond !== undefined) limited = new RateLimitedSource(limited, new RateLimiter(limits.bytesPerSecond));
  return {
    source: limited,
    explain(e: unknown): unknown {
      if (!(e instanceof MailferryError) || e.kind !== 'auth') return e;
      const hint = limits.signIn.find((h) => e.message.includes(h.host));
      return hint === undefined ? e : new MailferryError('auth', `${e.message} (${hint.hint})`, { cause: e.cause });
    },
    finish(report: RunReport): void {
      for (const { budget: b, account } of budgets.filter((x) => x.budget.reached)) {
        report.budgetReached = true;
        log.warn(`daily ${b.kind} budget of ${formatBytes(b.limit)} for ${account} reached (${formatBytes(b.used)} today); the rest follows on the next run after 00:00 UTC`);
      }
    },
  };
}
