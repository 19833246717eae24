import type { BackupConfig } from '../config/backup.js';
import { readSecret } from '../config/secrets.js';
import type { Logger } from '../log/logger.js';
import { runPipeline, type ProgressEvent } from '../pipeline/run.js';
import type { RunReport } from '../report.js';
import { ImapSource } from '../sources/imap.js';
import { openArchive, type OpenArchive } from './archive.js';

export interface CommandDeps {
  log: Logger;
  signal: AbortSignal;
  debug?: boolean;
  onProgress?: (report: RunReport, event: ProgressEvent) => void;
}

/** `mailferry backup`: an IMAP account into one or more local archives. */
export async function backup(cfg: BackupConfig, deps: CommandDeps): Promise<RunReport> {
  let password: string | undefined;
  const source = new ImapSource({
    endpoint: cfg.from,
    password: async () => (password ??= await readSecret(cfg.secret)),
    ...(cfg.ca === undefined ? {} : { ca: cfg.ca }),
    insecure: cfg.insecure,
    connections: cfg.connections,
    streamThreshold: cfg.streamThreshold,
    log: deps.log,
    debug: deps.debug ?? false,
  });
  // Read the secret first: a bad password source is a usage error before any connection.
  password = await readSecret(cfg.secret);
  const archives: OpenArchive[] = [];
  try {
    for (const to of cfg.to) archives.push(await openArchive(to, source.identity, cfg.layout, deps.log));
    return await runPipeline(
      source,
      archives.map((a) => a.sink),
      {
        include: cfg.include,
        exclude: cfg.exclude,
        batchBytes: cfg.batchBytes,
        batchMessages: cfg.batchMessages,
        retries: 5,
        retryBaseMs: 1000,
        signal: deps.signal,
        log: deps.log,
        ...(deps.onProgress === undefined ? {} : { onProgress: deps.onProgress }),
      },
    );
  } finally {
    await source.close();
    for (const a of archives) {
      await a.sink.close();
      await a.lock.release();
    }
  }
}
