import { closeSync, createReadStream, readSync } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MailferryError, errnoCode } from '../../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../../domain/message.js';
import { CrlfStream, lfToCrlf } from '../../formats/encoder.js';
import { headerBlock, wireSizeOfLf } from '../../formats/fingerprint.js';
import { flagsOfInfo, parseName } from '../../formats/maildir-name.js';
import { wireSizeOf } from './file-key.js';
import type { Logger } from '../../log/logger.js';
import type { MaildirLayout } from './sink.js';
import { KeywordTable } from './keywords.js';
import { defaultPlace, maildirFolderDir, placePath, unescapeComponent } from '../archive-paths.js';
import { Checkpoint } from '../../state/checkpoint.js';
import { linkError, openNoFollowSync, readNoFollow } from '../../state/no-follow.js';
import { loadArchiveState, type ArchiveState, type RecordedName } from '../../state/archive-state.js';
import { compareMailboxes as byPath } from '../../domain/message.js';
import { DEFAULT_UID_VALIDITY, idOf, localError } from '../local.js';
import type { LabelRecord } from '../../state/checkpoint.js';
import { labelMeta, labelsOfViews, type View } from './gmail-archive.js';
import type { Fetched, HeaderSample, Missing, Selected, Source } from '../../sources/source.js';

/**
 * A Maildir archive (as MaildirSink writes it, or as Dovecot keeps one) read back as a Source, for
 * `restore --from maildir:DIR`.
 *
 * - Mailboxes: INBOX is the root (listed when it has cur/). Layout `maildir++`: `.A.B` is `A/B`;
 *   a parent that has no directory of its own (the sink writes none for a \Noselect parent) or a
 *   directory without cur/ is listed as \Noselect. Layout `fs`: every directory below the root
 *   (except cur, new, tmp and dot-entries) is a folder, \Noselect when it has no cur/. Components
 *   are unescaped (`\2e` -> `.`, `\49nbox` -> `Inbox`), so paths are Unicode with delimiter '/';
 *   a folder whose state entry (or the archive's names file, state/names-file.ts: a name
 *   shortened to fit a file name) records its delimiter gets its source name and delimiter back
 *   (two source folders that unescape alike, `a/b` under '/' and `a.b` under '.', stay two).
 * - uidValidity: the one the archive's state file records for the folder, else 1. Ids do not depend
 *   on it (see below); it is passed on so a restore can tell archives of different epochs apart.
 * - Ids: the file's unique base name (before the first ',' or ':'), which a rename that only changes
 *   flags keeps. Ascending = string order (base names start with the delivery time in seconds).
 *   Files in tmp/ and dot-files do not count. A base name found twice (cur/ and new/) counts once.
 * - Sizes: a name's W= field is the wire size (CRLF) the writer counted (ours and Dovecot's), trusted
 *   while its S= is the file's size (a file changed in place since is measured anew). list() gives
 *   W=, else S= or the file's size (LF form: short of the wire size by a byte a line, 2-3%, enough
 *   for a byte budget); headers() gives the exact wire size: with W= it reads only the header
 *   block, without it (an older archive, another program's name) the whole file.
 * - headers() also gives `origin`, the source id a name's U= records, when the archive's state
 *   records the folder's uidValidity (and no re-match is half done): verify pairs by it.
 * - Flags from the info part and the folder's `dovecot-keywords`; internalDate = the file's mtime.
 * - fetch(): the file in wire form (LF -> CRLF, a CR already before an LF is kept, see lfToCrlf).
 *   A file larger than `streamThreshold` (LF size) comes as a Readable through CrlfStream, so it is
 *   never held whole; a smaller one as a Buffer (at most twice the threshold after conversion).
 *   A file that vanished since list() is not yielded; `missing()` then finds no file with its id.
 * - Gmail mode (`labels`, restore into Gmail or with `--labels keywords`; gmail-archive.ts): an
 *   archive a Gmail-mode backup wrote lists All Mail `labelled`, its messages with the labels the
 *   state records, and each label folder of hard links with its `label`, so each message is read
 *   once. Without the option, or in an archive without label records, every folder is plain.
 * - Local files cannot drop a connection: errors are `kind: 'mailbox'` (unreadable folder) or
 *   `'message'` (unreadable file), never retryable. `parallel` is 4: reads are independent.
 */
export interface MaildirSourceOptions {
  root: string;
  layout: MaildirLayout;
  streamThreshold: number;
  log: Logger;
  /** Read a Gmail-mode archive in Gmail mode (gmail-archive.ts): each message once, with its labels. */
  labels?: boolean;
}

/** uidValidity of a folder the state file does not know. */
const UNKNOWN_UID_VALIDITY = DEFAULT_UID_VALIDITY;

interface Folder {
  info: MailboxInfo;
  dir: string;
}

/** One message file of a folder: where it lies now (a flag change renames it). */
interface Entry {
  id: string;
  sub: 'cur' | 'new';
  name: string;
}

const CR = 0x0d;
const LF = 0x0a;

export class MaildirSource implements Source {
  readonly caps = { parallel: 4 };
  readonly identity: string;
  private folders: Map<string, Folder> | undefined;
  private state: Promise<ArchiveState> | undefined;
  private recorded: Promise<Map<string, RecordedName>> | undefined;
  /** Gmail mode: the labelled folder's messages by id (file base), with their recorded labels. */
  private labelRecords: Map<string, LabelRecord> | undefined;

  constructor(private readonly opts: MaildirSourceOptions) {
    this.identity = `maildir:${opts.root}`;
  }

  /** Directory -> the folder the archive's state records there. */
  private names(): Promise<Map<string, RecordedName>> {
    const { root, layout } = this.opts;
    return (this.recorded ??= (this.state ??= loadArchiveState(root)).then((st) =>
      st.locations((path, delimiter, place) => placePath(root, layout, place ?? defaultPlace(layout, { path, delimiter }))),
    ));
  }

  async mailboxes(): Promise<MailboxInfo[]> {
    const found = new Map<string, Folder>();
    const { root, layout } = this.opts;
    const recorded = await this.names();
    /** A folder found at `dir`: the name the state records there, else the unescaped one. */
    const add = (dir: string, parts: string[], noSelect: boolean): void => {
      const r = recorded.get(dir);
      const info: MailboxInfo =
        r?.delimiter === undefined ? { path: parts.join('/'), delimiter: '/' } : { path: r.path, delimiter: r.delimiter };
      const prev = found.get(info.path);
      if (prev !== undefined && prev.info.noSelect !== true) return;
      found.set(info.path, { info: noSelect ? { ...info, noSelect: true } : info, dir });
    };
    try {
      if (await hasCur(root)) found.set('INBOX', { info: { path: 'INBOX', delimiter: '/' }, dir: root });
      if (layout === 'maildir++') {
        for (const e of await readdir(root, { withFileTypes: true })) {
          if (!e.isDirectory() || !e.name.startsWith('.') || e.name.length < 2) continue;
          const raw = e.name.slice(1).split('.');
          if (raw.some((c) => c === '')) continue; // not a Maildir++ folder name
          const dir = join(root, e.name);
          add(dir, raw.map(unescapeComponent), !(await hasCur(dir)));
        }
      } else {
        const walk = async (dir: string, parts: string[]): Promise<void> => {
          for (const e of await readdir(dir, { withFileTypes: true })) {
            if (!e.isDirectory() || e.name.startsWith('.')) continue;
            if (e.name === 'cur' || e.name === 'new' || e.name === 'tmp') continue;
            const full = join(dir, e.name);
            const p = [...parts, unescapeComponent(e.name)];
            add(full, p, !(await hasCur(full)));
            await walk(full, p);
          }
        };
        await walk(root, []);
      }
    } catch (e: unknown) {
      throw localError('mailbox', e, `maildir ${root}`);
    }
    // A parent without a directory of its own (the sink writes none for a \Noselect parent).
    for (const { info: child } of [...found.values()]) {
      const d = child.delimiter;
      const parts = d === '' ? [child.path] : child.path.split(d);
      for (let i = 1; i < parts.length; i++) {
        const parent = parts.slice(0, i).join(d);
        if (!found.has(parent)) {
          const info: MailboxInfo = { path: parent, delimiter: d, noSelect: true };
          found.set(parent, { info, dir: maildirFolderDir(root, layout, info) });
        }
      }
    }
    if (this.opts.labels === true) await this.gmailMode(found);
    this.folders = found;
    return [...found.values()].map((f) => f.info).sort(byPath);
  }

  /** Gmail mode, when the archive records a labelled folder (gmail-archive.ts). */
  private async gmailMode(found: Map<string, Folder>): Promise<void> {
    const checkpoint = (await this.state)?.checkpoint;
    const key = checkpoint?.names().find((k) => (checkpoint.folder(k)?.labels?.size ?? 0) > 0);
    const all = key === undefined ? undefined : found.get(key);
    if (checkpoint === undefined || key === undefined || all === undefined || all.info.noSelect === true) return;
    const records = checkpoint.folder(key)?.labels ?? new Map<string, LabelRecord>();
    const byBase = new Map<string, LabelRecord>();
    for (const e of await this.entries(all.dir)) {
      const uid = parseName(e.name).uid;
      byBase.set(e.id, (uid === undefined ? undefined : records.get(uid)) ?? { labels: [] });
    }
    this.labelRecords = byBase;
    const views = new Map<string, View>();
    for (const [path, f] of found) {
      if (f === all || f.info.noSelect === true) continue;
      const bases = (await this.entries(f.dir)).map((e) => e.id);
      if (bases.length === 0 || !bases.every((b) => byBase.has(b))) continue; // a folder of its own (Spam, Trash)
      views.set(path, { delimiter: f.info.delimiter, sets: bases.map((b) => (byBase.get(b) as LabelRecord).labels) });
    }
    found.set(key, { ...all, info: { ...all.info, labelled: true, specialUse: '\\All' } });
    const recorded = new Map<string, string>();
    for (const path of views.keys()) {
      const label = checkpoint.placeOf(path)?.label;
      if (label !== undefined) recorded.set(path, label);
    }
    const shown = labelsOfViews(views, recorded);
    for (const path of views.keys()) {
      const f = found.get(path) as Folder;
      const label = shown.get(path);
      if (label !== undefined) found.set(path, { ...f, info: { ...f.info, label } });
      else this.opts.log.warn(`maildir ${f.dir}: its messages are links to ${key}'s, but which label it shows cannot be told; copied as a folder`);
    }
  }

  private dirOf(mailbox: MailboxInfo): string {
    return this.folders?.get(mailbox.path)?.dir ?? maildirFolderDir(this.opts.root, this.opts.layout, mailbox);
  }

  /** uidValidity the archive's state file records for the folder in `dir`. */
  private async uidValidityOf(dir: string): Promise<bigint> {
    const key = (await this.names()).get(dir)?.path;
    return recordedUidValidity((await this.state)?.checkpoint, key);
  }

  /** The folder's uidValidity when the archive's state records one, and no re-match is half done. */
  private async epochOf(dir: string): Promise<bigint | undefined> {
    const key = (await this.names()).get(dir)?.path;
    const f = key === undefined ? undefined : (await this.state)?.checkpoint?.folder(key);
    return f === undefined || f.rematching === true || f.uidValidity === undefined || !/^\d+$/.test(f.uidValidity) ? undefined : BigInt(f.uidValidity);
  }

  /** The folder's message files, one per id, in ascending id order. */
  private async entries(dir: string): Promise<Entry[]> {
    const byId = new Map<string, Entry>();
    for (const sub of ['cur', 'new'] as const) {
      let names: string[];
      try {
        names = await readdir(join(dir, sub));
      } catch (e: unknown) {
        if (errnoCode(e) === 'ENOENT') continue;
        throw localError('mailbox', e, `maildir folder ${dir}`);
      }
      for (const name of names) {
        if (name.startsWith('.')) continue;
        const id = idOf(name);
        if (id === '' || byId.has(id)) continue; // cur/ first: a copy in new/ counts once
        byId.set(id, { id, sub, name });
      }
    }
    return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private async keywords(dir: string): Promise<KeywordTable> {
    try {
      return await KeywordTable.load(dir);
    } catch (e: unknown) {
      throw localError('mailbox', e, `maildir folder ${dir}`);
    }
  }

  async select(mailbox: MailboxInfo): Promise<Selected> {
    const dir = this.dirOf(mailbox);
    const uidValidity = await this.uidValidityOf(dir);
    const count = mailbox.noSelect === true ? 0 : (await this.entries(dir)).length;
    return { mailbox: { ...mailbox, uidValidity }, count };
  }

  async *list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta> {
    if (mailbox.noSelect === true) return;
    const dir = this.dirOf(mailbox);
    const entries = (await this.entries(dir)).filter((e) => wanted(e.id));
    if (entries.length === 0) return;
    const kw = await this.keywords(dir);
    for (const e of entries) {
      const found = await this.statEntry(dir, e);
      if (found === undefined) continue; // vanished meanwhile
      const parsed = parseName(found.entry.name);
      const size = wireSizeOf(parsed, found.size) ?? parsed.size ?? found.size;
      yield {
        mailbox,
        id: e.id,
        size,
        flags: flagsOfInfo(parsed.info, (l) => kw.keyword(l)),
        internalDate: found.mtime,
        ...(mailbox.labelled === true ? labelMeta(this.labelRecords?.get(e.id)) : {}),
      };
    }
  }

  async *headers(mailbox: MailboxInfo): AsyncIterable<HeaderSample> {
    if (mailbox.noSelect === true) return;
    const dir = this.dirOf(mailbox);
    const epoch = await this.epochOf(dir);
    for (const e of await this.entries(dir)) {
      const found = await this.statEntry(dir, e);
      if (found === undefined) continue;
      const file = join(dir, found.entry.sub, found.entry.name);
      const parsed = parseName(found.entry.name);
      const wire = wireSizeOf(parsed, found.size);
      const origin = epoch !== undefined && parsed.uid !== undefined && !parsed.uid.startsWith('#') ? { origin: { uidValidity: epoch, id: parsed.uid } } : {};
      try {
        if (wire !== undefined) {
          yield { id: e.id, size: wire, header: lfToCrlf(readHead(file)), ...origin };
        } else if (found.size > this.opts.streamThreshold) {
          yield { id: e.id, ...(await scanLarge(file)), ...origin };
        } else {
          const body = await readNoFollow(file);
          yield { id: e.id, size: wireSizeOfLf(body), header: lfToCrlf(headerBlock(body)), ...origin };
        }
      } catch (err: unknown) {
        if (errnoCode(err) === 'ENOENT') continue;
        throw localError('message', err, `message ${file}`);
      }
    }
  }

  async *fetch(batch: readonly MessageMeta[], signal: AbortSignal): AsyncIterable<Fetched> {
    const first = batch[0];
    if (first === undefined) return;
    if (signal.aborted) throw new MailferryError('interrupted', 'interrupted');
    const dir = this.dirOf(first.mailbox);
    let index = new Map((await this.entries(dir)).map((e) => [e.id, e]));
    let rescanned = false;
    const sorted = [...batch].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const meta of sorted) {
      if (signal.aborted) throw new MailferryError('interrupted', 'interrupted');
      let entry = index.get(meta.id);
      let found = entry === undefined ? undefined : await this.statFile(dir, entry);
      if (found === undefined && !rescanned) {
        // Renamed (a flag change, new/ -> cur/) since the scan: look once more.
        rescanned = true;
        index = new Map((await this.entries(dir)).map((e) => [e.id, e]));
        entry = index.get(meta.id);
        found = entry === undefined ? undefined : await this.statFile(dir, entry);
      }
      if (entry === undefined || found === undefined) continue; // gone
      const file = join(dir, entry.sub, entry.name);
      if (found.size > this.opts.streamThreshold) {
        const crlf = new CrlfStream();
        const raw = createReadStream(file, { fd: openNoFollowSync(file, 'r') });
        raw.on('error', (e: unknown) => crlf.destroy(localError('message', e, `message ${file}`)));
        yield { meta, body: raw.pipe(crlf) };
        continue;
      }
      let lf: Buffer;
      try {
        lf = await readNoFollow(file);
      } catch (e: unknown) {
        if (errnoCode(e) === 'ENOENT') continue;
        throw localError('message', e, `message ${file}`);
      }
      const bytes = lfToCrlf(lf);
      // Over the threshold on the wire: a Readable, as the contract asks (it is in memory anyway).
      yield { meta, body: bytes.length > this.opts.streamThreshold ? Readable.from([bytes], { objectMode: false }) : bytes };
    }
  }

  /** Ids with no file in cur/ or new/ any more are gone (the folder read anew). */
  async missing(mailbox: MailboxInfo, ids: readonly string[]): Promise<Missing> {
    const present = new Set(mailbox.noSelect === true ? [] : (await this.entries(this.dirOf(mailbox))).map((e) => e.id));
    return { gone: new Set(ids.filter((id) => !present.has(id))) };
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }

  /** Size and mtime of an entry's file, or undefined when it is gone. */
  private async statFile(dir: string, e: Entry): Promise<{ size: number; mtime: Date } | undefined> {
    const file = join(dir, e.sub, e.name);
    try {
      // A link in the archive is never followed (state/no-follow.ts): an error naming it.
      const st = await lstat(file);
      if (st.isSymbolicLink()) throw linkError(file);
      return { size: st.size, mtime: st.mtime };
    } catch (err: unknown) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw localError('message', err, `message ${file}`);
    }
  }

  /** statFile, looking for the id once more when the file was renamed meanwhile. */
  private async statEntry(dir: string, e: Entry): Promise<{ entry: Entry; size: number; mtime: Date } | undefined> {
    const st = await this.statFile(dir, e);
    if (st !== undefined) return { entry: e, ...st };
    const again = (await this.entries(dir)).find((x) => x.id === e.id);
    if (again === undefined || (again.sub === e.sub && again.name === e.name)) return undefined;
    const st2 = await this.statFile(dir, again);
    if (st2 === undefined) {
      this.opts.log.debug(`maildir ${dir}: ${e.id} vanished while being read`);
      return undefined;
    }
    return { entry: again, ...st2 };
  }
}

function hasCur(dir: string): Promise<boolean> {
  return stat(join(dir, 'cur')).then(
    (st) => st.isDirectory(),
    (e: unknown) => {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return false;
      throw e;
    },
  );
}

function recordedUidValidity(checkpoint: Checkpoint | undefined, key: string | undefined): bigint {
  const recorded = key === undefined ? undefined : checkpoint?.folder(key)?.uidValidity;
  if (recorded === undefined || !/^\d+$/.test(recorded)) return UNKNOWN_UID_VALIDITY;
  return BigInt(recorded);
}

/** Bytes read at a time by readHead(): most header blocks fit in the first. */
const HEAD_WINDOW = 16 * 1024;

/**
 * The header block of a file (LF form, up to and including the first blank line; the whole file
 * when it has none), read in windows: the body is not read. Direct calls, as the sink's writes
 * are: a few microseconds each from the page cache, against a thread-pool round trip.
 */
function readHead(file: string): Buffer {
  const fd = openNoFollowSync(file, 'r');
  try {
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(HEAD_WINDOW);
      const n = readSync(fd, buf, 0, HEAD_WINDOW, total);
      if (n === 0) return Buffer.concat(parts, total);
      parts.push(buf.subarray(0, n));
      total += n;
      // A blank line may straddle windows: look from three bytes before the new window.
      const all = parts.length === 1 ? parts[0] ?? buf : Buffer.concat(parts, total);
      const from = Math.max(0, total - n - 3);
      if (all.indexOf('\n\n', from) !== -1 || all.indexOf('\r\n\r\n', from) !== -1) return headerBlock(all);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Wire size and header block (CRLF) of a large file, read as a stream so it is never held whole.
 * Only the header is kept, up to the first blank line (the whole file when it has none).
 */
async function scanLarge(file: string): Promise<{ size: number; header: Buffer }> {
  let size = 0;
  let prevCr = false;
  let head: Buffer[] = [];
  let tail = Buffer.alloc(0);
  let headLen = 0;
  let header: Buffer | undefined;
  for await (const chunk of createReadStream(file, { fd: openNoFollowSync(file, 'r') }) as AsyncIterable<Buffer>) {
    size += chunk.length;
    let pos = 0;
    for (;;) {
      const nl = chunk.indexOf(LF, pos);
      if (nl === -1) break;
      if (nl === 0 ? !prevCr : chunk[nl - 1] !== CR) size++;
      pos = nl + 1;
    }
    if (chunk.length > 0) prevCr = chunk[chunk.length - 1] === CR;
    if (header === undefined) {
      // A blank line may straddle chunks: search the new chunk with the last bytes before it.
      const window = Buffer.concat([tail, chunk]);
      head.push(chunk);
      headLen += chunk.length;
      if (window.indexOf('\n\n') !== -1 || window.indexOf('\r\n\r\n') !== -1) {
        header = lfToCrlf(headerBlock(Buffer.concat(head, headLen)));
        head = [];
      } else {
        tail = window.subarray(Math.max(0, window.length - 3));
      }
    }
  }
  return { size, header: header ?? lfToCrlf(Buffer.concat(head, headLen)) };
}
