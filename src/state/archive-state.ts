import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MailferryError, errnoCode } from '../domain/errors.js';
import { Checkpoint } from './checkpoint.js';
import { STATE_FILE } from './files.js';

/**
 * The archive's state file, read without knowing which account filled it. Its folder keys are
 * the paths of the *source* the archive was filled from, in that source's delimiter, which the
 * file does not record; `keyOf` finds the key whose on-disk location (under '/', '.' or no
 * hierarchy) is the given one.
 */
export interface ArchiveState {
  checkpoint: Checkpoint | undefined;
  keyOf(locate: (path: string, delimiter: string) => string, location: string): string | undefined;
}

export async function loadArchiveState(root: string): Promise<ArchiveState> {
  const path = join(root, STATE_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e: unknown) {
    if (errnoCode(e) === 'ENOENT') return { checkpoint: undefined, keyOf: () => undefined };
    throw new MailferryError('mailbox', `cannot read state file ${path} (${errnoCode(e) ?? 'error'})`, { cause: e });
  }
  let source: unknown;
  let keys: string[] = [];
  try {
    const json = JSON.parse(text) as { source?: unknown; folders?: unknown };
    source = json.source;
    if (typeof json.folders === 'object' && json.folders !== null) keys = Object.keys(json.folders);
  } catch {
    throw new MailferryError('usage', `state file ${path} is corrupt (not JSON)`);
  }
  if (typeof source !== 'string') throw new MailferryError('usage', `state file ${path} has an unknown format`);
  const checkpoint = await Checkpoint.load(path, source);
  return {
    checkpoint,
    keyOf(locate, location) {
      for (const delimiter of ['/', '.', '']) {
        for (const key of keys) if (locate(key, delimiter) === location) return key;
      }
      return undefined;
    },
  };
}
