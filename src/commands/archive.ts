import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { destinationError } from '../domain/errors.js';
import { describeEndpoint, type LocalEndpoint } from '../endpoints/url.js';
import type { Logger } from '../log/logger.js';
import { MaildirSink, type MaildirLayout } from '../drivers/maildir/sink.js';
import { MboxSink } from '../drivers/mbox/sink.js';
import type { Sink } from '../sinks/sink.js';
import { Checkpoint } from '../state/checkpoint.js';
import { acquireLock, type Lock } from '../state/lock.js';
import { DryRunSink } from './dry-run.js';

import { LOCK_FILE, STATE_FILE } from '../state/files.js';

export { LOCK_FILE, STATE_FILE };

export interface OpenArchive {
  sink: Sink;
  lock: Lock;
  /** The sink's own state; read for what the Sink contract does not carry (first-seen times). */
  checkpoint: Checkpoint;
}

/** Open a local archive as a Sink: create its root (0700), take its lock, load its checkpoint. */
export async function openArchive(
  endpoint: LocalEndpoint,
  sourceIdentity: string,
  layout: MaildirLayout,
  log: Logger,
): Promise<OpenArchive> {
  try {
    await mkdir(endpoint.path, { recursive: true, mode: 0o700 });
  } catch (e: unknown) {
    throw destinationError(e, `archive ${endpoint.path}`);
  }
  const lock = await acquireLock(join(endpoint.path, LOCK_FILE));
  try {
    const checkpoint = await Checkpoint.load(join(endpoint.path, STATE_FILE), sourceIdentity);
    const sink = endpoint.kind === 'maildir' ? new MaildirSink(endpoint.path, layout, checkpoint, log) : new MboxSink(endpoint.path, checkpoint, log);
    return { sink, lock, checkpoint };
  } catch (e: unknown) {
    await lock.release();
    throw e;
  }
}

/**
 * The local archives a transfer writes besides its target (`--archive`): opened as openArchive
 * does, or in a dry run read-only planning sinks over their states (no lock, nothing written).
 */
export async function openArchives(
  endpoints: readonly LocalEndpoint[],
  sourceIdentity: string,
  layout: MaildirLayout,
  log: Logger,
  dryRun: boolean,
): Promise<{ sinks: Sink[]; close(): Promise<void> }> {
  const opened: OpenArchive[] = [];
  const close = async (): Promise<void> => {
    for (const a of opened) {
      await a.sink.close();
      await a.lock.release();
    }
  };
  if (dryRun) {
    const sinks: Sink[] = [];
    for (const a of endpoints) sinks.push(new DryRunSink(describeEndpoint(a), await Checkpoint.load(join(a.path, STATE_FILE), sourceIdentity)));
    return { sinks, close };
  }
  try {
    for (const a of endpoints) opened.push(await openArchive(a, sourceIdentity, layout, log));
  } catch (e: unknown) {
    await close();
    throw e;
  }
  return { sinks: opened.map((a) => a.sink), close };
}
