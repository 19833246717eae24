import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import { basename, dirname, join, resolve } from 'node:path';
import pLimit from 'p-limit';
import { BATCH_COMMANDS, checkRows, type BatchCommandName, type CheckedRow } from '../batch/check.js';
import { readBatchFile } from '../batch/file.js';
import { ConnectionPools } from '../batch/pools.js';
import { ReportWriter, statusOf, worstExit, type RowOutcome } from '../batch/report.js';
import { parseShard, shardOf, type Shard } from '../batch/shard.js';
import { DEFAULTS } from '../config/defaults.js';
import { homePath, rawFlags } from '../config/flags.js';
import { errnoCode, EXIT, MailferryError } from '../domain/errors.js';
import type { Logger } from '../log/logger.js';
import { redact, writeStdout } from '../log/redact.js';
import { RunReport } from '../report.js';
import type { Command, CommandDeps, Output } from './deps.js';

/**
 * `mailferry batch FILE`: many jobs from one file (batch/file.ts: CSV or JSON lines, one row per
 * job, a `command` column and the command's long flag names), for the many accounts of a
 * migration. Every row is checked before any starts (batch/check.ts), with every problem listed
 * (exit 2). Then the rows of this worker's shard (`--shard I/N`, or `--shards N` and
 * $JOB_COMPLETION_INDEX: batch/shard.ts) run, `--jobs N` at once (p-limit), each through its
 * command's own `run` and `print` in this process, as `mailferry COMMAND` would run it: its own
 * lock, state file and connections, with connection caps counted across the rows that share an
 * account or a server (batch/pools.ts). In-process rather than one child process per row: a row's
 * memory is bounded by its `--batch-mb` and its connections, the command code is loaded once, and
 * a child per row measured no safer (each command already keeps its own lock and state); see
 * docs/batch.md. A row that fails does not stop the others; the report (batch/report.ts) gets one
 * entry per row, rewritten atomically as each ends, and the batch exits with its worst row's code.
 */
export interface BatchConfig {
  file: string;
  /** The rows this worker runs (its shard's), in file order. */
  rows: CheckedRow[];
  /** Rows in the file. */
  total: number;
  jobs: number;
  shard?: Shard;
  /** Undefined: no report file (the jobs of a `--config` file, without --report). */
  reportPath?: string;
}

export interface BatchResult {
  outcomes: RowOutcome[];
  cfg: BatchConfig;
  seconds: number;
}

interface RawBatchFlags {
  file?: string;
  jobs?: number;
  shard?: string;
  shards?: number;
  report?: string;
  verify?: string;
  ofConfig?: boolean;
}

/** The whole Command of each row's command, as main.ts builds it (with `--verify` after a copy). */
export type RowCommands = Readonly<Record<BatchCommandName, Command<unknown, unknown>>>;

export function loadBatchConfig(raw: RawBatchFlags, commands: RowCommands): BatchConfig {
  if (raw.file === undefined) throw new MailferryError('usage', 'name the batch file: mailferry batch FILE');
  const file = resolve(homePath(raw.file));
  const problems: string[] = [];
  const jobs = raw.jobs ?? DEFAULTS.jobs;
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 256) problems.push('--jobs must be a whole number from 1 to 256');
  const shard = parseShard(problems, raw.shard, raw.shards);
  const reportPath = raw.ofConfig === true && raw.report === undefined ? undefined : reportFile(problems, file, raw.report, shard);
  if (reportPath !== undefined) writableDir(problems, reportPath);
  const { rows, problems: textProblems } = readBatchFile(file);
  problems.push(...textProblems);
  if (rows.length === 0 && textProblems.length === 0) problems.push('the batch file has no rows');
  const checked = checkRows(rows, commands, { ...(raw.verify === undefined ? {} : { verify: raw.verify }), problems });
  if (problems.length > 0) throw new MailferryError('usage', `batch ${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}, nothing was started: ${problems.join('; ')}`);
  const mine = shard === undefined ? checked : checked.filter((r) => shardOf(r.id, shard.count) === shard.index);
  return { file, rows: mine, total: rows.length, jobs, ...(shard === undefined ? {} : { shard }), ...(reportPath === undefined ? {} : { reportPath }) };
}

/**
 * Where the report goes: `--report FILE` as given, or in `--report DIR/` (an existing directory),
 * else beside the batch file; named after the batch and the shard, so that workers sharing a
 * directory never write one file.
 */
function reportFile(problems: string[], file: string, report: string | undefined, shard: Shard | undefined): string {
  const name = `${basename(file).replace(/\.(csv|jsonl|ndjson)$/i, '')}${shard === undefined ? '' : `.shard-${shard.index}-of-${shard.count}`}.report.jsonl`;
  if (report === undefined) return join(dirname(file), name);
  const path = resolve(homePath(report));
  const isDir = report.endsWith('/') || (existsSync(path) && statSync(path).isDirectory());
  const dir = isDir ? path : dirname(path);
  if (!existsSync(dir)) problems.push(`--report ${report}: the directory ${dir} does not exist`);
  return isDir ? join(path, name) : path;
}

/** The report's directory must take the report (a batch file on a read-only ConfigMap needs --report). */
function writableDir(problems: string[], path: string): void {
  const dir = dirname(path);
  try {
    accessSync(dir, constants.W_OK);
  } catch (e: unknown) {
    if (errnoCode(e) !== 'ENOENT') problems.push(`the report ${path} cannot be written in ${dir} (${errnoCode(e) ?? 'error'}); --report PATH puts it elsewhere`);
  }
}

export async function runBatch(cfg: BatchConfig, commands: RowCommands, deps: CommandDeps): Promise<BatchResult> {
  const started = Date.now();
  const pools = new ConnectionPools();
  const limit = pLimit(cfg.jobs);
  setMaxListeners(cfg.jobs + 10, deps.signal);
  const writer = cfg.reportPath === undefined ? undefined : new ReportWriter(cfg.reportPath);
  const outcomes: RowOutcome[] = [];
  await Promise.all(
    cfg.rows.map((r) =>
      limit(async () => {
        const outcome = await runRow(r, commands[r.command], pools, deps);
        outcomes.push(outcome);
        if (outcome.exit !== EXIT.ok) deps.log.warn(rowLine(outcome));
        else deps.log.info(rowLine(outcome));
        await writer?.write(outcomes);
      }),
    ),
  );
  await writer?.write(outcomes);
  return { outcomes: outcomes.sort((a, b) => a.row - b.row), cfg, seconds: (Date.now() - started) / 1000 };
}

async function runRow(r: CheckedRow, command: Command<unknown, unknown>, pools: ConnectionPools, deps: CommandDeps): Promise<RowOutcome> {
  const base = {
    row: r.row.row,
    line: r.row.line,
    command: r.command,
    source: redact(r.id.source),
    destinations: r.id.destinations.map((d) => redact(d)),
  };
  const zero = { messages: 0, bytes: 0, unchanged: 0, vanished: 0, skipped: 0 };
  const startedAt = new Date();
  if (deps.signal.aborted) return { ...base, ...zero, status: 'not-run', exit: EXIT.interrupted, seconds: 0, started: startedAt.toISOString() };
  const release = await pools.acquire(r.needs);
  const log = prefixed(deps.log, `row ${r.row.row}: `);
  // The row's own signal, aborted with the batch's: the batch's carries one listener per running
  // row, not one per connection of every row.
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  deps.signal.addEventListener('abort', abort, { once: true });
  if (deps.signal.aborted) controller.abort();
  const t0 = Date.now();
  let exit: number;
  let result: unknown;
  let error: string | undefined;
  try {
    result = await command.run(r.cfg, { log, signal: controller.signal, ...(deps.debug === undefined ? {} : { debug: deps.debug }) });
    exit = await command.print(result, { log, json: false, quiet: true });
  } catch (thrown: unknown) {
    const e = deps.signal.aborted && !(thrown instanceof MailferryError && thrown.kind === 'interrupted') ? new MailferryError('interrupted', 'interrupted') : thrown;
    exit = e instanceof MailferryError ? e.exitCode : EXIT.internal;
    error = redact(e instanceof Error ? e.message : String(e));
  } finally {
    deps.signal.removeEventListener('abort', abort);
    release();
  }
  const { report, verify } = figures(result);
  return {
    ...base,
    status: statusOf(exit),
    exit,
    messages: report?.messages ?? 0,
    bytes: report?.bytes ?? 0,
    unchanged: report?.unchanged ?? 0,
    vanished: report?.vanished ?? 0,
    skipped: report?.skipped.length ?? 0,
    seconds: Number(((Date.now() - t0) / 1000).toFixed(3)),
    started: startedAt.toISOString(),
    ...(error === undefined ? {} : { error }),
    ...(verify === undefined ? {} : { verify }),
  };
}

/** A row's run report and verify result, from whichever command ran it (thenVerify wraps the copy's). */
function figures(result: unknown): { report?: RunReport; verify?: { ok: boolean; differences: number } } {
  if (typeof result !== 'object' || result === null) return {};
  const r = result as { copy?: unknown; verify?: { outcomes: { differences: number }[] } };
  const inner = 'copy' in r ? r.copy : result;
  const report = inner instanceof RunReport ? inner : (inner as { report?: unknown } | undefined)?.report;
  const differences = r.verify?.outcomes.reduce((n, o) => n + o.differences, 0);
  return {
    ...(report instanceof RunReport ? { report } : {}),
    ...(differences === undefined ? {} : { verify: { ok: differences === 0, differences } }),
  };
}

function prefixed(log: Logger, prefix: string): Logger {
  return {
    debug: (m) => log.debug(prefix + m),
    info: (m) => log.info(prefix + m),
    warn: (m) => log.warn(prefix + m),
    error: (m) => log.error(prefix + m),
  };
}

function rowLine(o: RowOutcome): string {
  const to = o.destinations.join(', ');
  const what = o.error === undefined ? `${o.messages} messages (${(o.bytes / 1e6).toFixed(2)} MB)` : o.error;
  const verify = o.verify === undefined ? '' : o.verify.ok ? ', verified' : `, verify: ${o.verify.differences} differences`;
  return `row ${o.row} ${o.command} ${o.source} -> ${to}: ${o.status} (exit ${o.exit}), ${what}${verify}, ${o.seconds.toFixed(1)} s`;
}

export function printBatch(result: BatchResult, out: Output): number {
  const { outcomes, cfg } = result;
  const exit = worstExit(outcomes.map((o) => o.exit));
  const count = (s: string): number => outcomes.filter((o) => o.status === s).length;
  const statuses = [...new Set(outcomes.map((o) => o.status))].map((s) => `${count(s)} ${s}`);
  const messages = outcomes.reduce((n, o) => n + o.messages, 0);
  const bytes = outcomes.reduce((n, o) => n + o.bytes, 0);
  const shard = cfg.shard === undefined ? '' : ` (shard ${cfg.shard.index}/${cfg.shard.count} of ${cfg.total} rows)`;
  const line = `batch: ${outcomes.length} rows${shard}${statuses.length === 0 ? '' : `, ${statuses.join(', ')}`}; ${messages} messages (${(bytes / 1e6).toFixed(1)} MB), ${result.seconds.toFixed(1)} s; exit ${exit}${cfg.reportPath === undefined ? '' : `; report ${cfg.reportPath}`}`;
  if (out.json) {
    for (const o of outcomes) writeStdout(JSON.stringify({ type: 'row', ...o }));
    writeStdout(JSON.stringify({ type: 'batch', rows: outcomes.length, total: cfg.total, ...(cfg.shard === undefined ? {} : { shard: cfg.shard }), messages, bytes, seconds: result.seconds, exit, ...(cfg.reportPath === undefined ? {} : { report: cfg.reportPath }) }));
  } else if (!out.quiet) {
    writeStdout([...outcomes.map(rowLine), line].join('\n'));
  }
  out.logFile?.line(line);
  return exit;
}

/** The batch as main.ts runs it, given the commands its rows name. */
export async function batchCommand(command: (name: BatchCommandName) => Promise<Command<unknown, unknown>>): Promise<Command<BatchConfig, BatchResult>> {
  const commands = Object.fromEntries(await Promise.all(BATCH_COMMANDS.map(async (n) => [n, await command(n)] as const))) as Record<BatchCommandName, Command<unknown, unknown>>;
  return {
    load: (args) => loadBatchConfig(rawFlags<RawBatchFlags>(args), commands),
    run: (cfg, deps) => runBatch(cfg, commands, deps),
    print: printBatch,
  };
}
