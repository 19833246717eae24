import { join } from 'node:path';
import { MailferryError, destinationError, errnoCode } from '../domain/errors.js';
import { writeFileAtomic } from './atomic.js';
import { decodePlace, type FolderPlace } from './checkpoint.js';
import { NAMES_FILE } from './files.js';
import { readNoFollow } from './no-follow.js';

/**
 * The archive's names file, `.mailferry-names.json` in its root: every folder whose place on disk
 * does not read back as its name (a name too long for the file system, shortened with a hash:
 * drivers/archive-names.ts), keyed by its source name, with its delimiter and place as in the
 * state's `places`; for a folder below such a place, its parents' too. Everything else in an
 * archive reads back by unescaping its names, so the archive still names every folder when the
 * state is gone (it is the resume point, bound to one source account, and may be moved away to
 * rebuild it): the archive Sources (restore, verify) read both.
 *
 * Entries are only added, each before anything is written at its place: the whole file is
 * rewritten atomically (state/atomic.ts: a random temporary name created exclusively, never
 * through a link, fsync, rename, fsync the directory), one write at a time, mode 0600. It holds
 * folder names only, as the state does.
 */
interface NamesJson {
  version: 1;
  places: Record<string, FolderPlace>;
}

export class NamesFile {
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    private readonly places: Map<string, FolderPlace>,
  ) {}

  /** The names file of the archive at `root` (empty when there is none). */
  static async load(root: string): Promise<NamesFile> {
    const path = join(root, NAMES_FILE);
    let text: string;
    try {
      text = (await readNoFollow(path)).toString('utf8');
    } catch (e: unknown) {
      if (errnoCode(e) === 'ENOENT') return new NamesFile(path, new Map());
      if (e instanceof MailferryError) throw e; // a link (no-follow.ts)
      throw new MailferryError('destination', `cannot read ${path} (${errnoCode(e) ?? 'error'})`, { cause: e });
    }
    let json: Partial<NamesJson>;
    try {
      json = JSON.parse(text) as Partial<NamesJson>;
    } catch {
      throw new MailferryError('destination', `names file ${path} is corrupt (not JSON)`);
    }
    if (json.version !== 1 || typeof json.places !== 'object' || json.places === null) {
      throw new MailferryError('destination', `names file ${path} has an unknown format`);
    }
    const places = new Map(Object.entries(json.places).map(([name, p]) => [name, decodePlace(p, `names file ${path}`, name)]));
    return new NamesFile(path, places);
  }

  entries(): [string, FolderPlace][] {
    return [...this.places.entries()];
  }

  /** Record where `folder` lies; resolves once the file holding it is durable (at once when it already does). */
  record(folder: string, place: FolderPlace): Promise<void> {
    const known = this.places.get(folder);
    if (known?.delimiter === place.delimiter && (known.place ?? []).join('\0') === (place.place ?? []).join('\0')) return this.writing;
    this.places.set(folder, place);
    const next = this.writing.then(async () => {
      const sorted = [...this.places.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const json: NamesJson = { version: 1, places: Object.fromEntries(sorted) };
      await writeFileAtomic(this.path, `${JSON.stringify(json, null, 1)}\n`).catch((e: unknown) => {
        throw destinationError(e, `names file ${this.path}`);
      });
    });
    this.writing = next.catch(() => undefined);
    return next;
  }
}
