import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { destinationError } from '../domain/errors.js';
import type { LocalEndpoint } from '../endpoints/url.js';
import type { Logger } from '../log/logger.js';
import { MaildirSink, type MaildirLayout } from '../sinks/maildir.js';
import { MboxSink } from '../sinks/mbox.js';
import type { Sink } from '../sinks/sink.js';
import { Checkpoint } from '../state/checkpoint.js';
import { acquireLock, type Lock } from '../state/lock.js';

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
    const sink = endpoint.kind === 'maildir' ? new MaildirSink(endpoint.path, layout, checkpoint, log) : new MboxSink(endpoint.path, checkpoint);
    return { sink, lock, checkpoint };
  } catch (e: unknown) {
    await lock.release();
    throw e;
  }
}
