import { readFile } from 'node:fs/promises';
import { MailferryError, errnoCode, destinationError } from '../domain/errors.js';
import { writeFileAtomic } from './atomic.js';
import { decodeIds, encodeIds, type EncodedIds } from './ids.js';

/**
 * The checkpoint of one archive (one Sink): for each source mailbox, the UIDVALIDITY the ids belong
 * to and the ids that are durable in the archive. Stored as JSON beside the archive, rewritten
 * atomically (temp file, fsync, rename, fsync dir). It holds no secret: the source identity is
 * `scheme://user@host:port`, never a password.
 *
 * Writes are coalesced: `save()` resolves once a write that began after the call has finished, so
 * many folders committing at once cost one write, not one each.
 */
export interface FolderCheckpoint {
  uidValidity?: string;
  /** A UIDVALIDITY re-match was started and not finished: ids are not trustworthy. */
  rematching?: boolean;
  /** mbox only: the file length that holds exactly the recorded messages. */
  end?: number;
  /** mbox only: offsets of From_ lines whose message had no final newline (one was added). */
  noEol?: number[];
  ids: Set<string>;
}

interface FolderJson extends EncodedIds {
  uidValidity?: string;
  rematching?: boolean;
  end?: number;
  noEol?: number[];
}

interface StateJson {
  version: 1;
  source: string;
  folders: Record<string, FolderJson>;
}

/**
 * The account an identity names, without TLS mode and port: the same mailbox reached over TLS or
 * STARTTLS, on 993 or 143, is the same archive. IMAP and POP3 ids differ, so the protocol stays.
 */
export function accountOf(identity: string): string {
  const m = /^([a-z0-9]+?)s?:\/\/(.+)@([^@:]+)(?::\d+)?$/.exec(identity);
  return m ? `${m[1]}:${m[2]}@${(m[3] as string).toLowerCase()}` : identity;
}

export class Checkpoint {
  private readonly folders = new Map<string, FolderCheckpoint>();
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;
  private queued: Promise<void> | null = null;

  private constructor(
    readonly path: string,
    readonly source: string,
  ) {}

  /** Load (or start) the state of an archive. A state made for another source account is refused. */
  static async load(path: string, source: string): Promise<Checkpoint> {
    const cp = new Checkpoint(path, source);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e: unknown) {
      if (errnoCode(e) === 'ENOENT') return cp;
      throw destinationError(e, `state file ${path}`);
    }
    let json: StateJson;
    try {
      json = JSON.parse(text) as StateJson;
    } catch {
      throw new MailferryError('destination', `state file ${path} is corrupt (not JSON); move it away to rebuild`);
    }
    if (json.version !== 1 || typeof json.folders !== 'object') {
      throw new MailferryError('destination', `state file ${path} has an unknown format`);
    }
    if (accountOf(json.source) !== accountOf(source)) {
      throw new MailferryError(
        'usage',
        `archive belongs to ${json.source}, not ${source}; use another destination for this account`,
      );
    }
    for (const [name, f] of Object.entries(json.folders)) {
      cp.folders.set(name, {
        ...(f.uidValidity === undefined ? {} : { uidValidity: f.uidValidity }),
        ...(f.rematching ? { rematching: true } : {}),
        ...(f.end === undefined ? {} : { end: f.end }),
        ...(f.noEol === undefined ? {} : { noEol: f.noEol }),
        ids: decodeIds(f),
      });
    }
    return cp;
  }

  folder(name: string): FolderCheckpoint | undefined {
    return this.folders.get(name);
  }

  /** Change a folder's record in memory; call `save()` to make it durable. */
  update(name: string, fn: (f: FolderCheckpoint) => void): void {
    let f = this.folders.get(name);
    if (f === undefined) {
      f = { ids: new Set() };
      this.folders.set(name, f);
    }
    fn(f);
    this.dirty = true;
  }

  /** Durably write every change made so far. */
  save(): Promise<void> {
    if (this.queued !== null) return this.queued;
    const next = this.writing.then(async () => {
      this.queued = null;
      if (!this.dirty) return;
      this.dirty = false;
      await writeFileAtomic(this.path, this.serialize()).catch((e: unknown) => {
        this.dirty = true;
        throw destinationError(e, `state file ${this.path}`);
      });
    });
    this.queued = next;
    this.writing = next.catch(() => undefined);
    return next;
  }

  private serialize(): string {
    const folders: Record<string, FolderJson> = {};
    for (const [name, f] of [...this.folders.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      folders[name] = {
        ...(f.uidValidity === undefined ? {} : { uidValidity: f.uidValidity }),
        ...(f.rematching ? { rematching: true } : {}),
        ...(f.end === undefined ? {} : { end: f.end }),
        ...(f.noEol === undefined || f.noEol.length === 0 ? {} : { noEol: f.noEol }),
        ...encodeIds(f.ids),
      };
    }
    const json: StateJson = { version: 1, source: this.source, folders };
    return `${JSON.stringify(json, null, 1)}\n`;
  }
}
