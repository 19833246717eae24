import { join } from 'node:path';
import type { MigrateConfig } from '../config/transfer.js';
import { credentialsFor } from '../auth/credentials.js';
import { describeEndpoint } from '../endpoints/url.js';
import type { Sink } from '../sinks/sink.js';
import { ProfileRolesSource } from '../sources/profile-roles.js';
import { Checkpoint } from '../state/checkpoint.js';
import { STATE_FILE } from '../state/files.js';
import { openArchive, type OpenArchive } from './archive.js';
import type { CommandDeps } from './backup.js';
import { DryRunSink, dryRunTarget } from './dry-run.js';
import { openTarget, type OpenTarget } from './target.js';
import { transfer, type TransferResult } from './transfer.js';
import { accountSource } from './sources.js';

/**
 * `mailferry migrate`: one IMAP account into another by APPEND (flags, keywords, INTERNALDATE),
 * each message fetched once and, with `--archive`, written in the same pass into local archives
 * (more sinks for the one pipeline; each keeps its own state beside it, as backup's do, so a
 * backup of the same account may share it). The target's state lives on this machine (target.ts).
 */
export async function migrate(cfg: MigrateConfig, deps: CommandDeps): Promise<TransferResult> {
  // Both secrets first: a bad password source is a usage error before any connection.
  const s = cfg.source;
  const credentials = credentialsFor(s.auth, s.endpoint);
  await credentials.get();
  // POP3: its one INBOX into the target's INBOX.
  const server = accountSource({ ...s, credentials }, { streamThreshold: cfg.streamThreshold, log: deps.log, debug: deps.debug ?? false });
  const source = new ProfileRolesSource(server, cfg.sourceRoles);
  let target: OpenTarget | undefined;
  const archives: OpenArchive[] = [];
  try {
    target = await openTarget({
      account: cfg.target,
      sourceIdentity: source.identity,
      ...(cfg.statePath === undefined ? {} : { statePath: cfg.statePath }),
      dryRun: cfg.dryRun,
      map: cfg.map,
      log: deps.log,
      debug: deps.debug ?? false,
    });
    const sinks: Sink[] = [];
    if (cfg.dryRun) {
      sinks.push(await dryRunTarget(target.sink, target.checkpoint));
      for (const a of cfg.archives) {
        sinks.push(new DryRunSink(describeEndpoint(a), await Checkpoint.load(join(a.path, STATE_FILE), source.identity)));
      }
    } else {
      sinks.push(target.sink);
      for (const a of cfg.archives) archives.push(await openArchive(a, source.identity, cfg.layout, deps.log));
      sinks.push(...archives.map((a) => a.sink));
    }
    return await transfer(source, sinks, cfg, deps, target.statePath);
  } finally {
    await source.close();
    if (target !== undefined) {
      await target.sink.close();
      await target.lock?.release();
    }
    for (const a of archives) {
      await a.sink.close();
      await a.lock.release();
    }
  }
}
