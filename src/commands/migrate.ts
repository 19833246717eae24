import { rawFlags } from '../config/flags.js';
import { loadMigrateConfig, type MigrateConfig } from '../config/transfer.js';
import { credentialsFor } from '../auth/login.js';
import { LabelHomes } from '../sources/label-homes.js';
import { ProfileRolesSource } from '../sources/profile-roles.js';
import { openArchives } from './archive.js';
import type { Command, CommandDeps } from './deps.js';
import { openTarget, sayThreads, type OpenTarget } from './target.js';
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
 * From Gmail, `--labels folders` (default) copies every folder Gmail's IMAP shows, so a message is
 * in All Mail and once more per label; `--labels keywords` reads the source in Gmail mode and
 * copies each message once (sources/label-homes.ts). Into Gmail (the target announces X-GM-EXT-1)
 * the source is read in Gmail mode whatever `--labels` says: each message is appended once, to
 * All Mail, and given its labels there (drivers/imap/target-labels.ts).
 */
export async function migrate(cfg: MigrateConfig, deps: CommandDeps): Promise<TransferResult> {
  // Both secrets first: a bad password source is a usage error before any connection.
  const s = cfg.source;
  const credentials = credentialsFor(s.auth, s.endpoint);
  await credentials.get();
  // POP3: its one INBOX into the target's INBOX.
  const spec = { ...s, credentials };
  const o = { streamThreshold: cfg.streamThreshold, maxMessageSize: cfg.maxMessageSize, signal: deps.signal, log: deps.log, debug: deps.debug ?? false };
  let server = accountSource(spec, o);
  let source: Source = server;
  let target: OpenTarget | undefined;
  let archives: Awaited<ReturnType<typeof openArchives>> | undefined;
  try {
    target = await openTarget(cfg, server.identity, deps);
    // Into Gmail: Gmail mode, each message appended once to All Mail and labelled there. Into
    // another server, `--labels keywords`: Gmail mode, each message once in its home folder.
    const gmailTarget = !cfg.dryRun && s.endpoint.kind === 'imap' && (await target.sink.isGmail());
    const gmailMode = gmailTarget || cfg.labels === 'keywords';
    const wrap = (inner: Source): Source => new ProfileRolesSource(cfg.labels === 'keywords' && !gmailTarget ? new LabelHomes(inner) : inner, cfg.sourceRoles);
    // Every --watch pass reads through a fresh Source of the same kind.
    const makeSource = (): Source => wrap(accountSource(gmailMode ? { ...spec, labels: true } : spec, o));
    if (gmailMode) {
      await server.close();
      server = accountSource({ ...spec, labels: true }, o);
    }
    source = wrap(server);
    archives = await openArchives(cfg.archives, source.identity, cfg.layout, deps.log, cfg.dryRun);
    const sinks = [await target.runSink(), ...archives.sinks];
    const into = target.sink;
    if (cfg.watch === undefined) {
      const result = await transfer(source, sinks, cfg, deps, target.statePath);
      sayThreads(into, result.report, deps.log);
      return result;
    }
    const statePath = target.statePath;
    const report = await onceOrWatch(
      cfg.watch,
      makeSource,
      sinks,
      async (from, to, only, passDeps) => sayThreads(into, (await transfer(from, to, { ...cfg, ...(only === undefined ? {} : { only }) }, passDeps, statePath)).report, passDeps.log),
      deps,
      // The target carries flag changes (UID STORE), and with --sync-deletions what is gone.
      { flags: true, expunges: cfg.syncDeletions },
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
