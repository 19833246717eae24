import { RETRY } from '../domain/retry.js';
import type { LogFile } from '../log/file.js';
import type { Logger } from '../log/logger.js';
import type { PipelineOptions, ProgressEvent } from '../pipeline/run.js';
import type { RunReport } from '../report.js';

/** What every command is given besides its config: the logger, the run's abort signal, progress. */
export interface CommandDeps {
  log: Logger;
  signal: AbortSignal;
  debug?: boolean;
  onProgress?: (report: RunReport, event: ProgressEvent) => void;
  /** `--json`: one line per event of a long run (watch mode: each message copied, each pass, the heartbeat). */
  onEvent?: (event: Readonly<Record<string, unknown>>) => void;
}

/** Where a command's results go: stdout (JSON lines with --json, nothing with --quiet), the --log-file. */
export interface Output {
  log: Logger;
  json: boolean;
  quiet: boolean;
  logFile?: LogFile;
}

/**
 * One command as main.ts runs it, every command the same way: `load` turns the parsed arguments
 * into a checked config (every problem at once, exit 2, before any I/O), `run` is the command's
 * function (the one tests call), `print` writes its result and gives the exit code.
 */
export interface Command<C, R> {
  load(args: Readonly<Record<string, unknown>>): C;
  run(cfg: C, deps: CommandDeps): Promise<R>;
  print(result: R, out: Output): number | Promise<number>;
}

/** The pipeline's options every command uses: its folder filters and batch sizes, the retry policy for dropped connections. */
export function pipelineOptions(
  cfg: { include: readonly string[]; exclude: readonly string[]; batchBytes: number; batchMessages: number },
  deps: CommandDeps,
): PipelineOptions {
  return {
    include: cfg.include,
    exclude: cfg.exclude,
    batchBytes: cfg.batchBytes,
    batchMessages: cfg.batchMessages,
    retries: RETRY.attempts,
    retryBaseMs: RETRY.baseMs,
    signal: deps.signal,
    log: deps.log,
    ...(deps.onProgress === undefined ? {} : { onProgress: deps.onProgress }),
  };
}
