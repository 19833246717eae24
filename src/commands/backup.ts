import { credentialsFor } from '../auth/login.js';
import { loadBackupConfig, type BackupConfig } from '../config/backup.js';
import { rawFlags } from '../config/flags.js';
import { Pop3Source } from '../drivers/pop3/source.js';
import type { Source } from '../sources/source.js';
import { epochSeconds } from '../state/checkpoint.js';
import { openArchive, openArchives, type OpenArchive } from './archive.js';
import { deletable } from './deletable.js';
import type { Command, CommandDeps } from './deps.js';
import { printOutcome, printResult } from './output.js';
import { accountSource } from './sources.js';
import { transfer, type TransferResult } from './transfer.js';
import { onceOrWatch } from './watch.js';

/**
 * `mailferry backup`: an IMAP or POP3 account into one or more local archives, through the one
 * pipeline every command uses (transfer.ts: limits, filter, run). With `--delete` (POP3), messages
 * are removed from the server after the run, and only those that every archive holds durably
 * (checkpointed after fsync), in one session that ends with QUIT. With `--delete-older-than DAYS`,
 * only those of them first archived more than DAYS days ago (see deletable.ts). With `--watch`
 * the archives stay open and locked while every pass runs on a fresh Source (watch.ts); POP3
 * --delete follows each pass. `--dry-run` plans and returns the plan (dryRun below).
 */
export async function backup(cfg: BackupConfig, deps: CommandDeps): Promise<TransferResult> {
  const credentials = credentialsFor(cfg.auth, cfg.from);
  const makeSource = (): Source =>
    accountSource(
      { endpoint: cfg.from, credentials, ...(cfg.ca === undefined ? {} : { ca: cfg.ca }), insecure: cfg.insecure, connections: cfg.connections, noUidl: cfg.noUidl, labels: keepsLabels(cfg) },
      { streamThreshold: cfg.streamThreshold, maxMessageSize: cfg.maxMessageSize, signal: deps.signal, log: deps.log, debug: deps.debug ?? false },
    );
  const identity = makeSource().identity;
  // The credential first: a bad password source is a usage error before any connection, and a
  // refused OAuth2 refresh token an auth error.
  await credentials.get();
  if (cfg.dryRun) return dryRun(makeSource(), cfg, deps);
  const archives: OpenArchive[] = [];
  try {
    for (const to of cfg.to) archives.push(await openArchive(to, identity, cfg.layout, deps.log));
    const report = await onceOrWatch(
      cfg.watch,
      makeSource,
      archives.map((a) => a.sink),
      async (source, sinks, only, passDeps) => {
        const { report } = await transfer(source, sinks, { ...cfg, dryRun: false, ...(only === undefined ? {} : { only }) }, passDeps);
        if (cfg.delete && source instanceof Pop3Source) {
          const onServer: string[] = [];
          for await (const m of source.list(source.inbox, () => true)) onServer.push(m.id);
          const ids = await deletable(onServer, archives, source.inbox, cfg.deleteOlderThanDays, epochSeconds());
          report.deleted = await source.delete(ids);
        }
        return report;
      },
      deps,
    );
    return { report };
  } finally {
    for (const a of archives) {
      await a.sink.close();
      await a.lock.release();
    }
  }
}

/**
 * `--dry-run` (`--check`): log in, list every folder and plan it against each archive's state as
 * a real run would, fetch nothing; no lock is taken (a cron run may hold it), nothing is created
 * or written, nothing deleted (dry-run.ts). The plan says per folder what is new since the last
 * run, and how much the archive already holds.
 */
async function dryRun(source: Source, cfg: BackupConfig, deps: CommandDeps): Promise<TransferResult> {
  const archives = await openArchives(cfg.to, source.identity, cfg.layout, deps.log, true);
  try {
    return await transfer(source, archives.sinks, cfg, deps);
  } finally {
    await source.close();
    await archives.close();
  }
}

/** Both archive formats keep Gmail labels (Maildir: hard-linked label folders; mbox: X-Gmail-Labels). */
export function keepsLabels(cfg: BackupConfig): boolean {
  return cfg.to.every((t) => t.kind === 'maildir' || t.kind === 'mbox');
}

export const BACKUP: Command<BackupConfig, TransferResult> = {
  load: (args) => loadBackupConfig(rawFlags(args)),
  run: backup,
  print: (result, out) => (result.plan === undefined ? printOutcome(result.report, out) : printResult(result, out)),
};
