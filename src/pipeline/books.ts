import type { RunReport } from '../report.js';

/**
 * The end-of-run invariant: every planned message is accounted for exactly once,
 *
 *   planned = copied + skipped + vanished + not copied (a target full) + held back (budget, dry run)
 *
 * (filtered messages are never planned, so they stand outside both sides). The pipeline keeps
 * these counts where each outcome happens (copy.ts per batch, run.ts for batches it gives up on);
 * this check does not trust that bookkeeping: a planned message that none of them claimed, or one
 * claimed twice, makes the run partial. The difference becomes a skipped entry with its reason, so
 * exit 0 is impossible with a gap. Returns the difference (0 when the books balance).
 */
export function closeBooks(report: RunReport): number {
  const accounted = report.messages + report.skippedMessages + report.vanished + report.notCopied + report.held;
  const gap = report.planned - accounted;
  if (gap !== 0) {
    report.skipped.push({
      mailbox: '*',
      reason:
        gap > 0
          ? `${gap} of ${report.planned} planned messages were neither copied nor reported (a rerun copies what is missing)`
          : `${-gap} more messages counted than the ${report.planned} planned; the run is not vouched for (a rerun checks again)`,
    });
  }
  return gap;
}
