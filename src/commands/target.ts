import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { RemoteAccount } from '../config/account.js';
import { credentialsFor } from '../auth/credentials.js';
import { destinationError } from '../domain/errors.js';
import { describeEndpoint } from '../endpoints/url.js';
import type { Logger } from '../log/logger.js';
import type { MapRule } from '../sinks/folder-map.js';
import { ImapAppendSink } from '../sinks/imap-append.js';
import { accountOf, Checkpoint } from '../state/checkpoint.js';
import { acquireLock, type Lock } from '../state/lock.js';

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
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_STATE_HOME'];
  // The XDG spec: a relative path is invalid and must be ignored.
  const base = xdg !== undefined && xdg.startsWith('/') ? xdg : join(homedir(), '.local', 'state');
  return join(base, 'mailferry');
}

export function defaultStatePath(sourceIdentity: string, targetIdentity: string, env: NodeJS.ProcessEnv = process.env): string {
  const hash = createHash('sha256').update(`${accountOf(sourceIdentity)}\n${accountOf(targetIdentity)}`).digest('hex').slice(0, 16);
  return join(stateDir(env), `target-${hash}.json`);
}

export interface OpenTarget {
  sink: ImapAppendSink;
  checkpoint: Checkpoint;
  statePath: string;
  /** Undefined in a dry run, which takes no lock and writes no state. */
  lock?: Lock;
}

export interface TargetOptions {
  account: RemoteAccount;
  sourceIdentity: string;
  statePath?: string;
  dryRun: boolean;
  /** `--map` rules for the target sink. */
  map?: readonly MapRule[];
  log: Logger;
  debug: boolean;
}

/** Get the target's credential (a bad password source is a usage error before any connection), take the lock, load the state. */
export async function openTarget(opts: TargetOptions): Promise<OpenTarget> {
  const statePath = opts.statePath ?? defaultStatePath(opts.sourceIdentity, describeEndpoint(opts.account.endpoint));
  const credentials = credentialsFor(opts.account.auth, opts.account.endpoint);
  await credentials.get();
  let lock: Lock | undefined;
  if (!opts.dryRun) {
    try {
      await mkdir(dirname(statePath), { recursive: true, mode: 0o700 });
    } catch (e: unknown) {
      throw destinationError(e, `state directory ${dirname(statePath)}`);
    }
    lock = await acquireLock(`${statePath}.lock`);
  }
  try {
    const checkpoint = await Checkpoint.load(statePath, opts.sourceIdentity);
    const a = opts.account;
    const sink = new ImapAppendSink({
      endpoint: a.endpoint,
      credentials,
      ...(a.ca === undefined ? {} : { ca: a.ca }),
      insecure: a.insecure,
      connections: a.connections,
      checkpoint,
      ...(opts.map === undefined ? {} : { map: opts.map }),
      log: opts.log,
      debug: opts.debug,
    });
    return { sink, checkpoint, statePath, ...(lock === undefined ? {} : { lock }) };
  } catch (e: unknown) {
    await lock?.release();
    throw e;
  }
}
