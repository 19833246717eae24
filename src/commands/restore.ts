import { rawFlags } from '../config/flags.js';
import { loadRestoreConfig, type RestoreConfig } from '../config/transfer.js';
import type { Command, CommandDeps } from './deps.js';
import { openTarget, sayThreads, type OpenTarget } from './target.js';
import { printResult } from './output.js';
import { transfer, type TransferResult } from './transfer.js';
import { archiveSource } from './sources.js';
import { LabelFolders } from '../sources/label-folders.js';
import { LabelHomes } from '../sources/label-homes.js';

/**
 * `mailferry restore`: a local archive (Maildir or mbox, as backup writes them) into an IMAP
 * account, by APPEND with flags and INTERNALDATE. The target's state (which archive messages are
 * on the target, under which UIDs) is a checkpoint on this machine whose source identity is the
 * archive (`maildir:/path`), so a rerun appends only what is new. The archive is only read and
 * takes no lock: a backup may keep writing it (an mbox is read up to its committed length).
 */
export async function restore(cfg: RestoreConfig, deps: CommandDeps): Promise<TransferResult> {
  const o = { streamThreshold: cfg.streamThreshold, log: deps.log, debug: deps.debug ?? false };
  // A Gmail-mode archive is read in Gmail mode (each message once, with its labels); any other
  // archive reads as before.
  let source = await archiveSource(cfg.from, cfg.layout, o, true);
  let target: OpenTarget | undefined;
  try {
    target = await openTarget(cfg, source.identity, deps);
    // As migrate reads Gmail: into Gmail, each message appended once to All Mail and labelled
    // there; elsewhere with `--labels keywords`, once in its home folder; with `--labels folders`,
    // All Mail and a folder per label, with a copy of each of its messages (counted).
    const gmailTarget = !cfg.dryRun && (await target.sink.isGmail());
    if (!gmailTarget) source = cfg.labels === 'keywords' ? new LabelHomes(source) : new LabelFolders(source);
    const result = await transfer(source, [await target.runSink()], cfg, deps, target.statePath);
    sayThreads(target.sink, result.report, deps.log);
    return result;
  } finally {
    await source.close();
    await target?.close();
  }
}

export const RESTORE: Command<RestoreConfig, TransferResult> = {
  load: (args) => loadRestoreConfig(rawFlags(args)),
  run: restore,
  print: printResult,
};
