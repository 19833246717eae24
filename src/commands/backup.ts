import type { BackupConfig } from '../config/backup.js';
import { credentialsFor } from '../auth/login.js';
import type { Logger } from '../log/logger.js';
import { runPipeline, type PipelineOptions, type ProgressEvent } from '../pipeline/run.js';
import type { RunReport } from '../report.js';
import { Pop3Source } from '../drivers/pop3/source.js';
import { filterSource } from '../sources/filter.js';
import { epochSeconds } from '../state/checkpoint.js';
import { openArchive, type OpenArchive } from './archive.js';
import { deletable } from './deletable.js';
import { withLimits } from './limits.js';
import { accountSource } from './sources.js';

export interface CommandDeps {
  log: Logger;
  signal: AbortSignal;
  debug?: boolean;
  onProgress?: (report: RunReport, event: ProgressEvent) => void;
}

/** The pipeline's options every command uses: its folder filters and batch sizes, retries of dropped connections. */
export function pipelineOptions(
  cfg: { include: readonly string[]; exclude: readonly string[]; batchBytes: number; batchMessages: number },
  deps: CommandDeps,
): PipelineOptions {
  return {
    include: cfg.include,
    exclude: cfg.exclude,
    batchBytes: cfg.batchBytes,
    batchMessages: cfg.batchMessages,
    retries: 5,
    retryBaseMs: 1000,
    signal: deps.signal,
    log: deps.log,
    ...(deps.onProgress === undefined ? {} : { onProgress: deps.onProgress }),
  };
}

/**
 * `mailferry backup`: an IMAP or POP3 account into one or more local archives. With `--delete`
 * (POP3), messages are removed from the server after the run, and only those that every archive
 * holds durably (checkpointed after fsync), in one session that ends with QUIT. With
 * `--delete-older-than DAYS`, only those of them first archived more than DAYS days ago
 * (see deletable.ts).
 */
export async function backup(cfg: BackupConfig, deps: CommandDeps): Promise<RunReport> {
  const credentials = credentialsFor(cfg.auth, cfg.from);
  const server = accountSource(
    { endpoint: cfg.from, credentials, ...(cfg.ca === undefined ? {} : { ca: cfg.ca }), insecure: cfg.insecure, connections: cfg.connections, noUidl: cfg.noUidl },
    { streamThreshold: cfg.streamThreshold, log: deps.log, debug: deps.debug ?? false },
  );
  const pop3 = server instanceof Pop3Source ? server : undefined;
  const { source, finish, explain } = await withLimits(server, cfg.limits, deps.log);
  // The credential first: a bad password source is a usage error before any connection, and a
  // refused OAuth2 refresh token an auth error.
  await credentials.get();
  const archives: OpenArchive[] = [];
  try {
    for (const to of cfg.to) archives.push(await openArchive(to, source.identity, cfg.layout, deps.log));
    const report = await runPipeline(
      filterSource(source, cfg.filter, deps.log),
      archives.map((a) => a.sink),
      pipelineOptions(cfg, deps),
    ).catch((e: unknown) => {
      throw explain(e);
    });
    finish(report);
    if (cfg.delete && pop3 !== undefined) {
      const onServer: string[] = [];
      for await (const m of pop3.list(pop3.inbox, () => true)) onServer.push(m.id);
      const ids = await deletable(onServer, archives, pop3.inbox, cfg.deleteOlderThanDays, epochSeconds());
      report.deleted = await pop3.delete(ids);
    }
    return report;
  } finally {
    await source.close();
    for (const a of archives) {
      await a.sink.close();
      await a.lock.release();
    }
  }
}

