import { MailferryError, errnoCode, destinationError } from '../domain/errors.js';
import { writeFileAtomic } from './atomic.js';
import { Journal } from './journal.js';
import { readNoFollow } from './no-follow.js';
import { redact } from '../log/redact.js';
import { decodeIds, encodeIds, type EncodedIds } from './ids.js';
import { decodePlaced, encodePlaced, type PlacedJson, type PlacedRun } from './placed.js';
import { decodeFlagSets, decodeUidRuns, encodeFlagSets, encodeUidRuns, type FlagSetsJson, type UidRunsJson } from './synced.js';

/**
 * The checkpoint of one archive (one Sink): for each source mailbox, the UIDVALIDITY the ids belong
 * to, the ids that are durable in the archive and, for messages that came without an internal
 * date (POP3), when each was first made durable (for `--delete-older-than`). Stored as JSON
 * beside the archive, rewritten atomically (temp file, fsync, rename, fsync dir). It holds no secret: the source identity is
 * `scheme://user@host:port`, never a password.
 *
 * Writes are coalesced: `save()` resolves once a write that began after the call has finished, so
 * many folders committing at once cost one write, not one each. `recordSent()` makes one SMTP
 * forward record durable at once through a journal beside the file (journal.ts), folded into the
 * file and emptied by the next `save()`; `load` replays it.
 *
 * Local archives also keep, apart from the folders' records (which say what is durable), where
 * each folder lies: `places`, its delimiter and, when not the plain one, its on-disk forms
 * (drivers/archive-names.ts); a folder may have a place and no record yet.
 */
export interface FolderCheckpoint {
  /** The UIDVALIDITY the ids belong to, in decimal; compared as a string, any difference is a change. */
  uidValidity?: string;
  /** A UIDVALIDITY re-match was started and not finished: ids are not trustworthy. */
  rematching?: boolean;
  /** mbox only: the file length that holds exactly the recorded messages. */
  end?: number;
  /** mbox only: offsets of From_ lines whose message had no final newline (one was added). */
  noEol?: number[];
  /**
   * mbox only: where the messages of `ids` are in the file, as runs (placed.ts), written in the
   * same commit; verify pairs by them. Absent in archives written before they were kept.
   */
  placed?: PlacedRun[];
  ids: Set<string>;
  /**
   * id -> epoch seconds when it was first made durable here; kept only for messages without an
   * internal date (POP3 has none), written in the same commit as the ids.
   */
  firstSeen?: Map<string, number>;
  /** IMAP target only (synced.ts): source id -> the flags last written to the target. */
  flags?: Map<string, string>;
  /** IMAP target only: source id -> its UID on the target (APPENDUID or re-match). */
  targetUids?: Map<string, number>;
  /** SMTP forward only: id -> what the relay answered when it accepted the message, and its fingerprint. */
  sent?: Map<string, SentRecord>;
  /** A labelled folder (Gmail's All Mail) only: id -> its labels and Gmail ids, as last archived. */
  labels?: Map<string, LabelRecord>;
}

/**
 * A message's Gmail labels (sorted) and ids, as the archive last recorded them. In an mbox
 * archive, also where the message lies (`at`, the offset of its From_ line): its labels then are
 * these, which later runs keep current, not those of its X-Gmail-Labels line (as first archived).
 */
export interface LabelRecord {
  labels: readonly string[];
  globalId?: string;
  threadId?: string;
  at?: number;
}

interface LabelJson {
  l: string[];
  m?: string;
  t?: string;
  o?: number;
}

export interface SentRecord {
  /** The relay's final reply to DATA, e.g. "250 2.0.0 Ok: queued as 4Xyz". */
  reply: string;
  /** fingerprintKey() of the message, so a changed UIDVALIDITY can be matched without resending. */
  key: string;
}

/**
 * Where a local archive keeps a folder: the source delimiter, and the forms unless plain; for a
 * folder that shows a Gmail label (a Maildir's folder of hard links), the label, so that reading
 * the archive back need not tell it by elimination (drivers/maildir/gmail-archive.ts).
 */
export interface FolderPlace {
  delimiter: string;
  place?: string[];
  label?: string;
}

interface FolderJson extends EncodedIds {
  uidValidity?: string;
  rematching?: boolean;
  end?: number;
  noEol?: number[];
  placed?: PlacedJson;
  firstSeen?: Record<string, number>;
  sent?: Record<string, SentRecord>;
  flags?: FlagSetsJson;
  targetUids?: UidRunsJson;
  labels?: Record<string, LabelJson>;
}

/** Now, as the checkpoint counts time: whole seconds since the epoch. */
export function epochSeconds(date = new Date()): number {
  return Math.floor(date.getTime() / 1000);
}

/** Record `at` as the first-seen time of each id that has none yet (a sink calls it in its commit). */
export function markFirstSeen(f: FolderCheckpoint, ids: Iterable<string>, at: number): void {
  for (const id of ids) {
    const seen = (f.firstSeen ??= new Map());
    if (!seen.has(id)) seen.set(id, at);
  }
}

/** Forget the first-seen times of ids no longer in `ids` (after a re-match replaced them). */
export function keepFirstSeen(f: FolderCheckpoint, ids: ReadonlySet<string>): void {
  if (f.firstSeen === undefined) return;
  for (const id of f.firstSeen.keys()) if (!ids.has(id)) f.firstSeen.delete(id);
}

interface StateJson {
  version: 1;
  source: string;
  folders: Record<string, FolderJson>;
  places?: Record<string, FolderPlace>;
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
  private readonly places = new Map<string, FolderPlace>();
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;
  private queued: Promise<void> | null = null;
  private readonly journal: Journal;

  private constructor(
    readonly path: string,
    readonly source: string,
  ) {
    this.journal = new Journal(`${path}.journal`);
  }

  /** Load (or start) the state of an archive. A state made for another source account is refused. */
  static async load(path: string, source: string): Promise<Checkpoint> {
    const cp = new Checkpoint(path, source);
    let text: string;
    try {
      text = (await readNoFollow(path)).toString('utf8');
    } catch (e: unknown) {
      if (errnoCode(e) === 'ENOENT') return cp.replay();
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
        ...(f.placed === undefined ? {} : { placed: decodePlacedIn(f.placed, path) }),
        ids: decodeIds(f),
        ...(f.firstSeen === undefined ? {} : { firstSeen: decodeFirstSeen(f.firstSeen, path) }),
        ...(f.sent === undefined ? {} : { sent: decodeSent(f.sent, path) }),
        ...(f.flags === undefined ? {} : { flags: decodeFlagSets(f.flags) }),
        ...(f.targetUids === undefined ? {} : { targetUids: decodeUidRuns(f.targetUids) }),
        ...(f.labels === undefined ? {} : { labels: decodeLabels(f.labels, path) }),
      });
    }
    for (const [name, p] of Object.entries(json.places ?? {})) cp.places.set(name, decodePlace(p, `state file ${path}`, name));
    return cp.replay();
  }

  /** Apply what the journal recorded after the state file was last written. */
  private async replay(): Promise<Checkpoint> {
    let entries: unknown[];
    try {
      entries = await this.journal.read();
    } catch (e: unknown) {
      throw destinationError(e, `state journal ${this.journal.path}`);
    }
    for (const e of entries) {
      const r = e as Partial<{ folder: string; id: string; sent: SentRecord }> | null;
      if (typeof r?.folder !== 'string' || typeof r.id !== 'string' || typeof r.sent?.reply !== 'string' || typeof r.sent.key !== 'string') {
        throw new MailferryError('destination', `state journal ${this.journal.path} has an unknown format`);
      }
      this.applySent(r.folder, r.id, { reply: r.sent.reply, key: r.sent.key });
    }
    return this;
  }

  private applySent(folder: string, id: string, sent: SentRecord): void {
    this.update(folder, (f) => {
      f.ids.add(id);
      (f.sent ??= new Map()).set(id, sent);
    });
  }

  /**
   * SMTP forward: `id` of `folder` was accepted by the relay with `sent.reply`. Durable when this
   * resolves (one journal line), in memory at once; `save()` folds it into the state file.
   */
  recordSent(folder: string, id: string, given: SentRecord): Promise<void> {
    // The relay's reply is a server's text: it may echo a secret (log/redact.ts).
    const sent = { ...given, reply: redact(given.reply) };
    this.applySent(folder, id, sent);
    const line = JSON.stringify({ folder, id, sent });
    // On the same chain as save(): a save that empties the journal has serialized every record
    // appended before it, and a record appended after it is replayed harmlessly.
    const next = this.writing.then(() =>
      this.journal.append(line).catch((e: unknown) => {
        throw destinationError(e, `state journal ${this.journal.path}`);
      }),
    );
    this.writing = next.catch(() => undefined);
    return next;
  }

  folder(name: string): FolderCheckpoint | undefined {
    return this.folders.get(name);
  }

  /** Every folder with a record or a place. */
  names(): string[] {
    return [...new Set([...this.folders.keys(), ...this.places.keys()])];
  }

  /** Drop a folder's record, not its place (in memory; `save()` makes it durable). */
  forget(name: string): void {
    if (this.folders.delete(name)) this.dirty = true;
  }

  placeOf(name: string): FolderPlace | undefined {
    return this.places.get(name);
  }

  /** Record where a folder lies (in memory; `save()` makes it durable). */
  setPlace(name: string, place: FolderPlace): void {
    this.places.set(name, place);
    this.dirty = true;
  }

  /**
   * When each of `ids` was first made durable in `folder` (epoch seconds). An id without a record
   * (archived before these times were kept, or found again by a re-match after the state was
   * lost) is recorded now, in memory, so it ages from today and never counts as older than it may
   * be; call `save()` to keep those records.
   */
  firstSeenOf(folder: string, ids: Iterable<string>, now: number): Map<string, number> {
    const out = new Map<string, number>();
    const list = [...ids];
    const missing = list.filter((id) => this.folders.get(folder)?.firstSeen?.has(id) !== true);
    if (missing.length > 0) this.update(folder, (f) => markFirstSeen(f, missing, now));
    const seen = this.folders.get(folder)?.firstSeen;
    for (const id of list) out.set(id, seen?.get(id) ?? now);
    return out;
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
      await this.journal.clear().catch((e: unknown) => {
        throw destinationError(e, `state journal ${this.journal.path}`);
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
        ...(f.placed === undefined || f.placed.length === 0 ? {} : { placed: encodePlaced(f.placed) }),
        ...encodeIds(f.ids),
        ...(f.firstSeen === undefined || f.firstSeen.size === 0
          ? {}
          : { firstSeen: Object.fromEntries([...f.firstSeen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) }),
        ...(f.sent === undefined || f.sent.size === 0 ? {} : { sent: Object.fromEntries(f.sent) }),
        ...(f.flags === undefined || f.flags.size === 0 ? {} : { flags: encodeFlagSets(f.flags) }),
        ...(f.targetUids === undefined || f.targetUids.size === 0 ? {} : { targetUids: encodeUidRuns(f.targetUids) }),
        ...(f.labels === undefined || f.labels.size === 0 ? {} : { labels: encodeLabels(f.labels) }),
      };
    }
    const places = [...this.places.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
    const json: StateJson = { version: 1, source: this.source, folders, ...(places.length === 0 ? {} : { places: Object.fromEntries(places) }) };
    return `${JSON.stringify(json, null, 1)}\n`;
  }
}

function encodeLabels(labels: ReadonlyMap<string, LabelRecord>): Record<string, LabelJson> {
  const out: Record<string, LabelJson> = {};
  for (const [id, r] of labels) {
    out[id] = {
      l: [...r.labels],
      ...(r.globalId === undefined ? {} : { m: r.globalId }),
      ...(r.threadId === undefined ? {} : { t: r.threadId }),
      ...(r.at === undefined ? {} : { o: r.at }),
    };
  }
  return out;
}

/** The labels of a folder's record: id -> { l, m?, t?, o? }. */
function decodeLabels(json: unknown, path: string): Map<string, LabelRecord> {
  return decodeById(json, path, 'labels', (r): LabelRecord | undefined => {
    const rec = r as Partial<LabelJson> | null;
    const ok =
      Array.isArray(rec?.l) &&
      rec.l.every((l) => typeof l === 'string') &&
      ['m', 't'].every((k) => rec[k as 'm' | 't'] === undefined || typeof rec[k as 'm' | 't'] === 'string') &&
      (rec.o === undefined || (Number.isSafeInteger(rec.o) && rec.o >= 0));
    if (!ok || rec === null) return undefined;
    return {
      labels: rec.l as string[],
      ...(rec.m === undefined ? {} : { globalId: rec.m }),
      ...(rec.t === undefined ? {} : { threadId: rec.t }),
      ...(rec.o === undefined ? {} : { at: rec.o }),
    };
  });
}

/**
 * A record kept per message id (firstSeen, sent, labels): a JSON object whose every value `one`
 * accepts (undefined: refused), else the state file is of an unknown format, naming `what` and the id.
 */
function decodeById<T>(json: unknown, path: string, what: string, one: (value: unknown) => T | undefined): Map<string, T> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new MailferryError('destination', `state file ${path} has an unknown format (${what})`);
  }
  const out = new Map<string, T>();
  for (const [id, value] of Object.entries(json as Record<string, unknown>)) {
    const decoded = one(value);
    if (decoded === undefined) throw new MailferryError('destination', `state file ${path} has an unknown format (${what} of ${id})`);
    out.set(id, decoded);
  }
  return out;
}

/** A recorded place (the state's `places`, the names file's), checked; `file` names the file in the error. */
export function decodePlace(json: unknown, file: string, folder: string): FolderPlace {
  const p = json as Partial<FolderPlace> | null;
  const forms = p?.place;
  if (
    typeof p?.delimiter !== 'string' ||
    (forms !== undefined && (!Array.isArray(forms) || !forms.every((f) => typeof f === 'string' && f !== ''))) ||
    (p.label !== undefined && typeof p.label !== 'string')
  ) {
    throw new MailferryError('destination', `${file} has an unknown format (place of ${folder})`);
  }
  return { delimiter: p.delimiter, ...(forms === undefined ? {} : { place: forms }), ...(p.label === undefined ? {} : { label: p.label }) };
}

function decodePlacedIn(json: unknown, path: string): PlacedRun[] {
  const runs = decodePlaced(json);
  if (runs === undefined) throw new MailferryError('destination', `state file ${path} has an unknown format (placed)`);
  return runs;
}

function decodeFirstSeen(json: unknown, path: string): Map<string, number> {
  return decodeById(json, path, 'firstSeen', (t) => (typeof t === 'number' && Number.isFinite(t) ? t : undefined));
}

function decodeSent(json: unknown, path: string): Map<string, SentRecord> {
  return decodeById(json, path, 'sent', (r) => {
    const rec = r as Partial<SentRecord> | null;
    return typeof rec?.reply === 'string' && typeof rec.key === 'string' ? { reply: rec.reply, key: rec.key } : undefined;
  });
}
