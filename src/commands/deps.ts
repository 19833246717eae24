import { RETRY } from '../domain/retry.js';
import type { Logger } from '../log/logger.js';
import type { PipelineOptions, ProgressEvent } from '../pipeline/run.js';
import type { RunReport } from '../report.js';

/** What every command is given besides its config: the logger, the run's abort signal, progress. */
export interface CommandDeps {
  log: Logger;
  signal: AbortSignal;
  debug?: boolean;
  onProgress?: (report: RunReport, event: ProgressEvent) => void;
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
