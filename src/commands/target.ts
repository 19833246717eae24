import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { TransferCommon } from '../config/transfer.js';
import { credentialsFor } from '../auth/login.js';
import { destinationError } from '../domain/errors.js';
import { describeEndpoint } from '../endpoints/url.js';
import type { Logger } from '../log/logger.js';
import { ROLE_FLAG, type FolderRole } from '../profiles/schema.js';
import { ImapAppendSink } from '../drivers/imap/target.js';
import type { RunReport } from '../report.js';
import type { Sink } from '../sinks/sink.js';
import { accountOf, Checkpoint } from '../state/checkpoint.js';
import { stateDir } from '../state/dir.js';
import { acquireLock, type Lock } from '../state/lock.js';
import { dryRunTarget } from './dry-run.js';

/**
 * The IMAP target of `restore` and `migrate`: an ImapAppendSink with its checkpoint and lock.
 *
 * The target cannot hold our state, so it lives on this machine: by default in
 * `$XDG_STATE_HOME/mailferry/` (else `~/.local/state/mailferry/`), one file per (source, target)
 * pair, `target-<16 hex>.json`, the hex being the start of the sha256 of both accounts (as
 * accountOf gives them: user and host, not TLS mode or port, so switching imaps:// to imap:// keeps
 * the state). No secret in the name or the file. `--state FILE` puts it elsewhere. The directory is
 * created 0700, the file written 0600 (writeFileAtomic), and `FILE.lock` beside it stops a second
 * run for the same pair (exit 7).
 */
export function defaultStatePath(sourceIdentity: string, targetIdentity: string, env: NodeJS.ProcessEnv = process.env): string {
  const hash = createHash('sha256').update(`${accountOf(sourceIdentity)}\n${accountOf(targetIdentity)}`).digest('hex').slice(0, 16);
  return join(stateDir(env), `target-${hash}.json`);
}

export interface OpenTarget {
  sink: ImapAppendSink;
  checkpoint: Checkpoint;
  statePath: string;
  /** The sink the pipeline writes to: the target itself, or in a dry run its planning wrapper. */
  runSink(): Promise<Sink>;
  /** Close the target's connections and release the lock; never throws. */
  close(): Promise<void>;
}

/** What openTarget reads of a restore or migrate config. */
export type TargetConfig = Pick<TransferCommon, 'target' | 'statePath' | 'dryRun' | 'map' | 'targetRoles' | 'limits'>;

/**
 * A state file on this machine (a target's or a forward's): its directory made (0700) and its lock
 * taken (`FILE.lock`, exit 7 on contention), then loaded. A dry run takes no lock and writes nothing.
 */
export async function openState(statePath: string, sourceIdentity: string, dryRun: boolean): Promise<{ checkpoint: Checkpoint; lock?: Lock }> {
  let lock: Lock | undefined;
  if (!dryRun) {
    try {
      await mkdir(dirname(statePath), { recursive: true, mode: 0o700 });
    } catch (e: unknown) {
      throw destinationError(e, `state directory ${dirname(statePath)}`);
    }
    lock = await acquireLock(`${statePath}.lock`);
  }
  try {
    return { checkpoint: await Checkpoint.load(statePath, sourceIdentity), ...(lock === undefined ? {} : { lock }) };
  } catch (e: unknown) {
    await lock?.release();
    throw e;
  }
}

/** Get the target's credential (a bad password source is a usage error before any connection), take the lock, load the state. */
export async function openTarget(cfg: TargetConfig, sourceIdentity: string, deps: { log: Logger; debug?: boolean }): Promise<OpenTarget> {
  const a = cfg.target;
  const statePath = cfg.statePath ?? defaultStatePath(sourceIdentity, describeEndpoint(a.endpoint));
  const credentials = credentialsFor(a.auth, a.endpoint);
  await credentials.get();
  const { checkpoint, lock } = await openState(statePath, sourceIdentity, cfg.dryRun);
  const sink = new ImapAppendSink({
    endpoint: a.endpoint,
    credentials,
    ...(a.ca === undefined ? {} : { ca: a.ca }),
    insecure: a.insecure,
    connections: a.connections,
    checkpoint,
    map: cfg.map,
    ...(cfg.limits.maxAppendBytes === undefined ? {} : { maxAppendBytes: cfg.limits.maxAppendBytes }),
    roles: new Map(Object.entries(cfg.targetRoles).map(([role, path]) => [ROLE_FLAG[role as FolderRole], path])),
    log: deps.log,
    debug: deps.debug ?? false,
  });
  return {
    sink,
    checkpoint,
    statePath,
    runSink: () => (cfg.dryRun ? dryRunTarget(sink, checkpoint) : Promise.resolve(sink)),
    close: async () => {
      await sink.close();
      await lock?.release();
    },
  };
}

/**
 * Gmail to Gmail: what the run kept of the source's conversations (the target sink's Threads),
 * put in the report and said once: a warning when some were split (Gmail groups appended mail by
 * Subject and References itself; X-GM-THRID cannot be set over IMAP), else at info. Nothing when
 * no copied message came with a thread (not both sides Gmail). The exit code is not touched.
 */
export function sayThreads(sink: ImapAppendSink, report: RunReport, log: Logger): RunReport {
  const t = sink.threads.take();
  if (t.conversations === 0) return report;
  report.threads = t;
  if (t.split === 0) log.info(`Gmail threads: all ${t.conversations} conversations kept`);
  else log.warn(`Gmail threads: ${t.split} of ${t.conversations} conversations were split on the target (IMAP cannot set a thread; Gmail groups by Subject and References)`);
  return report;
}
