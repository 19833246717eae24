import type { TransferCommon } from '../config/transfer.js';
import { runPipeline } from '../pipeline/run.js';
import type { RunReport } from '../report.js';
import type { Sink } from '../sinks/sink.js';
import { filterSource } from '../sources/filter.js';
import { LabelCopies } from '../sources/label-copies.js';
import type { Source } from '../sources/source.js';
import { pipelineOptions, type CommandDeps } from './deps.js';
import { DryRunSink, dryRunSource, type PlannedFolder } from './dry-run.js';
import { withLimits } from './limits.js';

/** What `restore`, `migrate` and `forward` return: the run's report and, for `--dry-run`, the plan. */
export interface TransferResult {
  report: RunReport;
  /** `--dry-run`: per folder, what a real run would copy (folders with nothing to copy included). */
  plan?: PlannedFolder[];
  /** Where the target's state lives (read, and written unless a dry run); backup keeps its state in each archive. */
  statePath?: string;
}

/**
 * Run the one pipeline from `source` to `sinks`, for every command (backup too): the limits of
 * the config (daily budgets, rate) wrapped around the source, then its message filter; in a dry
 * run, collect the plan and fetch nothing.
 */
export async function transfer(
  source: Source,
  sinks: readonly Sink[],
  cfg: Pick<TransferCommon, 'dryRun' | 'filter' | 'limits' | 'include' | 'exclude' | 'batchBytes' | 'batchMessages'> & { syncDeletions?: boolean; only?: readonly string[] },
  deps: CommandDeps,
  statePath?: string,
): Promise<TransferResult> {
  const plan: PlannedFolder[] = [];
  // A dry run fetches nothing, so it neither spends nor records a budget.
  const limited = cfg.dryRun ? undefined : await withLimits(source, cfg.limits, deps.log);
  const filtered = new LabelCopies(filterSource(limited?.source ?? source, cfg.filter, deps.log));
  const report = await runPipeline(cfg.dryRun ? dryRunSource(filtered) : filtered, sinks, {
    ...pipelineOptions(cfg, { log: deps.log, signal: deps.signal }),
    ...(cfg.syncDeletions === true ? { syncDeletions: true } : {}),
    ...(cfg.only === undefined ? {} : { only: cfg.only }),
    onProgress: (r, event) => {
      if (event.type === 'planned') {
        plan.push({ mailbox: event.mailbox, messages: event.messages, bytes: event.bytes, ...(event.removed === undefined ? {} : { remove: event.removed }) });
      }
      if (!cfg.dryRun) deps.onProgress?.(r, event);
    },
  }).catch((e: unknown) => {
    throw limited === undefined ? e : limited.explain(e);
  });
  limited?.finish(report);
  const copies = filtered.count(report.perFolder);
  if (copies !== undefined) report.labelCopies = copies;
  if (!cfg.dryRun) return { report, ...(statePath === undefined ? {} : { statePath }) };
  const targets = sinks.find((x): x is DryRunSink => x instanceof DryRunSink && x.targets.size > 0)?.targets;
  for (const p of plan) {
    const t = targets?.get(p.mailbox);
    if (t !== undefined) Object.assign(p, { target: t.path, create: !t.exists });
    p.present = report.perFolder.get(p.mailbox)?.unchanged ?? 0;
  }
  plan.sort((a, b) => (a.mailbox < b.mailbox ? -1 : a.mailbox > b.mailbox ? 1 : 0));
  return { report, plan, ...(statePath === undefined ? {} : { statePath }) };
}
