import { rawFlags } from '../config/flags.js';
import { loadMigrateConfig, type MigrateConfig } from '../config/transfer.js';
import { credentialsFor } from '../auth/login.js';
import { ProfileRolesSource } from '../sources/profile-roles.js';
import { openArchives } from './archive.js';
import type { Command, CommandDeps } from './deps.js';
import { openTarget, type OpenTarget } from './target.js';
import { printResult } from './output.js';
import { transfer, type TransferResult } from './transfer.js';
import { accountSource } from './sources.js';
import { onceOrWatch } from './watch.js';
import type { Source } from '../sources/source.js';

/**
 * `mailferry migrate`: one IMAP account into another by APPEND (flags, keywords, INTERNALDATE),
 * each message fetched once and, with `--archive`, written in the same pass into local archives
 * (more sinks for the one pipeline; each keeps its own state beside it, as backup's do, so a
 * backup of the same account may share it). The target's state lives on this machine (target.ts).
 * `--watch` keeps the target, its state and lock (and the archives) for the whole watch and
 * copies new mail as it comes (commands/watch.ts).
 */
export async function migrate(cfg: MigrateConfig, deps: CommandDeps): Promise<TransferResult> {
  // Both secrets first: a bad password source is a usage error before any connection.
  const s = cfg.source;
  const credentials = credentialsFor(s.auth, s.endpoint);
  await credentials.get();
  // POP3: its one INBOX into the target's INBOX.
  const makeSource = (): Source => new ProfileRolesSource(accountSource({ ...s, credentials }, { streamThreshold: cfg.streamThreshold, maxMessageSize: cfg.maxMessageSize, signal: deps.signal, log: deps.log, debug: deps.debug ?? false }), cfg.sourceRoles);
  const source = makeSource();
  let target: OpenTarget | undefined;
  let archives: Awaited<ReturnType<typeof openArchives>> | undefined;
  try {
    target = await openTarget(cfg, source.identity, deps);
    archives = await openArchives(cfg.archives, source.identity, cfg.layout, deps.log, cfg.dryRun);
    const sinks = [await target.runSink(), ...archives.sinks];
    if (cfg.watch === undefined) return await transfer(source, sinks, cfg, deps, target.statePath);
    const statePath = target.statePath;
    const report = await onceOrWatch(
      cfg.watch,
      makeSource,
      sinks,
      async (from, to, only, passDeps) => (await transfer(from, to, { ...cfg, ...(only === undefined ? {} : { only }) }, passDeps, statePath)).report,
      deps,
    );
    return { report, statePath };
  } finally {
    await source.close();
    await target?.close();
    await archives?.close();
  }
}

export const MIGRATE: Command<MigrateConfig, TransferResult> = {
  load: (args) => loadMigrateConfig(rawFlags(args)),
  run: migrate,
  print: printResult,
};
