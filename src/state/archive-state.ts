import { join } from 'node:path';
import { MailferryError, errnoCode } from '../domain/errors.js';
import { Checkpoint } from './checkpoint.js';
import { STATE_FILE } from './files.js';
import { NamesFile } from './names-file.js';
import { readNoFollow } from './no-follow.js';

/**
 * The archive's state file, read without knowing which account filled it. Its folder keys are
 * the paths of the *source* the archive was filled from. A folder written since places are
 * recorded has one (its delimiter and, when not the plain one, its forms: drivers/archive-names.ts):
 * its location is exact. An older one has not: its location is guessed, under '/', '.' or no
 * hierarchy, in that order. The archive's names file (names-file.ts: the folders whose place does
 * not read back as their name) serves where the state has no place, and alone when the state is
 * gone.
 */
export interface RecordedName {
  /** The source path (the state's key). */
  readonly path: string;
  /** Undefined for an entry of an older version (its location was guessed). */
  readonly delimiter?: string;
}

export type Locate = (path: string, delimiter: string, place: readonly string[] | undefined) => string;

export interface ArchiveState {
  checkpoint: Checkpoint | undefined;
  /** On-disk location (as `locate` computes it) -> the folder recorded there. */
  locations(locate: Locate): Map<string, RecordedName>;
}

export async function loadArchiveState(root: string): Promise<ArchiveState> {
  const path = join(root, STATE_FILE);
  const names = (await NamesFile.load(root)).entries();
  /** The names file's places, where `out` has none yet. */
  const described = (locate: Locate, out: Map<string, RecordedName>): Map<string, RecordedName> => {
    for (const [key, p] of names) {
      const at = locate(key, p.delimiter, p.place);
      if (!out.has(at)) out.set(at, { path: key, delimiter: p.delimiter });
    }
    return out;
  };
  let text: string;
  try {
    text = (await readNoFollow(path)).toString('utf8');
  } catch (e: unknown) {
    if (errnoCode(e) === 'ENOENT') return { checkpoint: undefined, locations: (locate) => described(locate, new Map()) };
    if (e instanceof MailferryError) throw e; // a link (no-follow.ts)
    throw new MailferryError('mailbox', `cannot read state file ${path} (${errnoCode(e) ?? 'error'})`, { cause: e });
  }
  let source: unknown;
  try {
    const json = JSON.parse(text) as { source?: unknown };
    source = json.source;
  } catch {
    throw new MailferryError('usage', `state file ${path} is corrupt (not JSON)`);
  }
  if (typeof source !== 'string') throw new MailferryError('usage', `state file ${path} has an unknown format`);
  const checkpoint = await Checkpoint.load(path, source);
  return {
    checkpoint,
    locations(locate) {
      const out = new Map<string, RecordedName>();
      const keys = checkpoint.names();
      for (const key of keys) {
        const p = checkpoint.placeOf(key);
        if (p !== undefined) out.set(locate(key, p.delimiter, p.place), { path: key, delimiter: p.delimiter });
      }
      described(locate, out);
      for (const delimiter of ['/', '.', '']) {
        for (const key of keys) {
          if (checkpoint.placeOf(key) !== undefined) continue;
          const at = locate(key, delimiter, undefined);
          if (!out.has(at)) out.set(at, { path: key });
        }
      }
      return out;
    },
  };
}
