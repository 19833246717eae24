import { createReadStream } from 'node:fs';
import { lstat, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { MailferryError, errnoCode } from '../../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../../domain/message.js';
import { lfToCrlf, MboxWireStream, unquoteMboxrd } from '../../formats/encoder.js';
import { scanMbox, type MboxSpan } from '../../formats/mbox-reader.js';
import type { Logger } from '../../log/logger.js';
import { defaultPlace, mboxFolderFile, placePath, unescapeComponent } from '../archive-paths.js';
import { compareMailboxes as byPath } from '../../domain/message.js';
import { linkError, openNoFollow, openNoFollowSync } from '../../state/no-follow.js';
import { placedIds } from '../../state/placed.js';
import { loadArchiveState, type ArchiveState, type RecordedName } from '../../state/archive-state.js';
import { DEFAULT_UID_VALIDITY, localError } from '../local.js';
import { headerBlocks, readRange, sizeWithoutFinalLf, stateFits } from './header-blocks.js';
import { labelFolderOf, labelsByOffset, threadsByOffset } from './gmail-archive.js';
import type { Fetched, HeaderSample, Missing, Selected, Source } from '../../sources/source.js';

/**
 * An mbox archive (as MboxSink writes it: mboxrd, Thunderbird layout) read back as a Source, for
 * `restore --from mbox:DIR`.
 *
 * - Mailboxes: every regular file below the root whose name does not start with '.' is a folder;
 *   a directory `X.sbd` holds the children of `X`, and `X` is \Noselect when there is no file `X`.
 *   Names are unescaped (`\2f` -> `/`, `\78.sbd` -> `x.sbd`), paths are Unicode with delimiter
 *   '/'; a folder whose state entry (or the archive's names file, state/names-file.ts: a name
 *   shortened to fit a file name) records its delimiter gets its source name and delimiter back.
 * - uidValidity: as recorded in the archive's state file for the folder, else 1.
 * - Ids: the byte offset of the message's From_ line, in decimal; stable while the file is only
 *   appended to (as the sink does). A file rewritten by another program (a MUA expunging) changes
 *   them; a message whose offset no longer starts a message is not yielded by fetch().
 * - Only the committed part of the file is read: up to the state file's `end` when it has one, so a
 *   message torn by a crashed backup is never offered. The state's `noEol` offsets tell which
 *   messages had no final newline, so their bytes come back exact. A file another program
 *   rewrote (header-blocks.ts stateFits) is read whole, without them; headers() then offers each
 *   message ending in LF with its size without that LF too (`altSize`), as the LF may be framing.
 * - The file is read once per open into an index (formats/mbox-reader.ts MboxScanner): each
 *   message's offsets, header end, flags (its Status/X-Status/X-Keywords lines), From_ line and
 *   exact wire size; no message is held. select(), list() and fetch() use it while the file's
 *   size, mtime and inode are unchanged (a changed file is indexed again); missing() indexes anew.
 *   internalDate is the From_ line's date (asctime, UTC).
 * - headers() reads the header blocks only (in windows of 256 KiB: a large body is skipped), and
 *   gives `origin`, the source id the state records for a message (`placed`, state/placed.ts), while the
 *   state describes the file and records the folder's uidValidity (no re-match half done).
 * - fetch(): a message up to `streamThreshold` (wire size) is read into a Buffer, un-quoted, in
 *   wire form; a larger one is a Readable streamed from the file through MboxWireStream, so memory
 *   is bounded by bytes, as for the Maildir source. A read error is `kind: 'message'`.
 * - Gmail mode (`labels`; restore into Gmail or with `--labels keywords`; gmail-archive.ts): a
 *   Gmail-mode archive lists All Mail `labelled`, its messages with their labels (as the state
 *   records them now, else their X-Gmail-Labels line) and recorded thread ids (`threadId`), and a
 *   folder (no file) showing each label. Without it every file is a plain folder.
 */
/** The source message a message of the archive is, by the state (HeaderSample.origin). */
type Origin = { uidValidity: bigint; id: string };

export interface MboxSourceOptions {
  root: string;
  streamThreshold: number;
  log: Logger;
  /** Read a Gmail-mode archive in Gmail mode (gmail-archive.ts): each message once, with its labels. */
  labels?: boolean;
}

interface Folder {
  info: MailboxInfo;
  file: string;
}

export class MboxSource implements Source {
  readonly caps = { parallel: 2 };
  readonly identity: string;
  private folders: Map<string, Folder> | undefined;
  private state: Promise<ArchiveState> | undefined;
  private recordedNames: Promise<Map<string, RecordedName>> | undefined;
  private readonly indexes = new Map<string, { stamp: Stamp; index: Index }>();

  constructor(private readonly opts: MboxSourceOptions) {
    this.identity = `mbox:${opts.root}`;
  }

  /** File -> the folder the archive's state records there. */
  private names(): Promise<Map<string, RecordedName>> {
    const { root } = this.opts;
    return (this.recordedNames ??= (this.state ??= loadArchiveState(root)).then((st) =>
      st.locations((path, delimiter, place) => placePath(root, 'mbox', place ?? defaultPlace('mbox', { path, delimiter }))),
    ));
  }

  async mailboxes(): Promise<MailboxInfo[]> {
    const found = new Map<string, Folder>();
    const recorded = await this.names();
    const infoAt = (file: string, parts: string[]): MailboxInfo => {
      const r = recorded.get(file);
      return r?.delimiter === undefined ? { path: parts.join('/'), delimiter: '/' } : { path: r.path, delimiter: r.delimiter };
    };
    const walk = async (dir: string, parts: string[]): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        if (e.name.startsWith('.')) continue;
        const full = join(dir, e.name);
        if (e.isFile()) {
          const info = infoAt(full, [...parts, unescapeComponent(e.name)]);
          found.set(info.path, { info, file: full });
        } else if (e.isDirectory() && e.name.endsWith('.sbd') && e.name.length > 4) {
          const p = [...parts, unescapeComponent(e.name.slice(0, -4))];
          const info = infoAt(full.slice(0, -4), p);
          if (!found.has(info.path)) found.set(info.path, { info: { ...info, noSelect: true }, file: full.slice(0, -4) });
          await walk(full, p);
        }
      }
    };
    try {
      await walk(this.opts.root, []);
    } catch (e: unknown) {
      throw localError('mailbox', e, `mbox ${this.opts.root}`);
    }
    // A file seen after its `.sbd` replaces the \Noselect placeholder (set() above overwrites).
    if (this.opts.labels === true) await this.gmailMode(found);
    this.folders = found;
    return [...found.values()].map((f) => f.info).sort(byPath);
  }

  /** Gmail mode, when the archive records a labelled folder (gmail-archive.ts). */
  private async gmailMode(found: Map<string, Folder>): Promise<void> {
    const checkpoint = (await this.state)?.checkpoint;
    const key = checkpoint?.names().find((k) => (checkpoint.folder(k)?.labels?.size ?? 0) > 0);
    const all = key === undefined ? undefined : found.get(key);
    if (key === undefined || all === undefined || all.info.noSelect === true) return;
    const labels = new Set<string>();
    const { spans, stateless } = await this.index(all.file);
    const now = stateless ? new Map<number, readonly string[]>() : labelsByOffset(checkpoint?.folder(key));
    for (const s of spans) for (const l of now.get(s.offset) ?? s.labels ?? []) labels.add(l);
    found.set(key, { ...all, info: { ...all.info, labelled: true, specialUse: '\\All' } });
    for (const label of [...labels].sort()) {
      const info = labelFolderOf(label, all.info);
      const taken = found.get(info.path);
      if (taken === undefined) found.set(info.path, { info, file: mboxFolderFile(this.opts.root, info) });
      else this.opts.log.warn(`mbox ${taken.file}: a folder of its own where the label ${label} would be shown; that label is not restored`);
    }
  }

  private fileOf(mailbox: MailboxInfo): string {
    return this.folders?.get(mailbox.path)?.file ?? mboxFolderFile(this.opts.root, mailbox);
  }

  /** noEol offsets, the committed end, uidValidity, each message's recorded labels, and where the recorded ids are of a folder, from the archive's state. */
  private async recorded(
    file: string,
  ): Promise<{ noEol: Set<number>; end?: number; uidValidity?: string; labelled: boolean; labels: Map<number, readonly string[]>; threads: Map<number, string>; origins: (offsets: number[]) => Map<number, Origin> }> {
    const key = (await this.names()).get(file)?.path;
    const f = key === undefined ? undefined : (await this.state)?.checkpoint?.folder(key);
    const origins = (offsets: number[]): Map<number, Origin> => {
      const out = new Map<number, Origin>();
      if (f?.placed === undefined || f.rematching === true || f.uidValidity === undefined || !/^\d+$/.test(f.uidValidity)) return out;
      const uidValidity = BigInt(f.uidValidity);
      for (const [at, id] of placedIds(f.placed, offsets)) if (f.ids.has(id)) out.set(at, { uidValidity, id });
      return out;
    };
    return {
      origins,
      noEol: new Set(f?.noEol ?? []),
      labelled: (f?.labels?.size ?? 0) > 0,
      labels: labelsByOffset(f),
      threads: threadsByOffset(f),
      ...(f?.end === undefined ? {} : { end: f.end }),
      ...(f?.uidValidity === undefined ? {} : { uidValidity: f.uidValidity }),
    };
  }

  /**
   * The folder's index: every message's span (formats/mbox-reader.ts), from one read of the
   * committed part of the file. Kept while the file's size, mtime and inode stay as they were
   * (`fresh` reads it anew, as missing() must); a file that changed is read again.
   */
  private async index(file: string, fresh = false): Promise<Index> {
    let st: Stamp | undefined;
    try {
      const s = await lstat(file);
      if (s.isSymbolicLink()) throw linkError(file); // never followed (state/no-follow.ts)
      st = { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
    } catch (e: unknown) {
      if (errnoCode(e) !== 'ENOENT') throw localError('mailbox', e, `mbox ${file}`);
    }
    if (st === undefined) return { spans: [], byOffset: new Map(), stateless: true };
    const known = this.indexes.get(file);
    if (!fresh && known !== undefined && sameStamp(known.stamp, st)) return known.index;
    const rec = await this.recorded(file);
    const spans: MboxSpan[] = [];
    let stateless: boolean;
    try {
      // A file another program rewrote (header-blocks.ts stateFits) is read whole, as one
      // without our state: its recorded end and noEol offsets point elsewhere now.
      const { size } = st;
      stateless = rec.end === undefined || !(await stateFits(file, rec.end, size));
      const end = stateless ? size : rec.end;
      for await (const s of scanMbox(file, stateless ? new Set() : rec.noEol, end, rec.labelled)) spans.push(s);
    } catch (e: unknown) {
      throw localError('mailbox', e, `mbox ${file}`);
    }
    const index = { spans, byOffset: new Map(spans.map((s) => [s.offset, s])), stateless };
    this.indexes.set(file, { stamp: st, index });
    return index;
  }

  async select(mailbox: MailboxInfo): Promise<Selected> {
    const file = this.fileOf(mailbox);
    const rec = await this.recorded(file);
    const uidValidity = rec.uidValidity === undefined ? DEFAULT_UID_VALIDITY : BigInt(rec.uidValidity);
    const count = mailbox.noSelect === true ? 0 : (await this.index(file)).spans.length;
    return { mailbox: { ...mailbox, uidValidity }, count };
  }

  async *list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta> {
    const file = this.fileOf(mailbox);
    const { spans, stateless } = await this.index(file);
    // The labels the state records now (gmail-archive.ts), else the X-Gmail-Labels line's.
    // and the Gmail thread ids it records (a restore into Gmail compares threads).
    const rec = mailbox.labelled === true && !stateless ? await this.recorded(file) : undefined;
    const now = rec?.labels ?? new Map<number, readonly string[]>();
    for (const s of spans) {
      const id = String(s.offset);
      if (!wanted(id)) continue;
      const date = dateOfFromLine(s.fromLine);
      const labels = mailbox.labelled === true ? { labels: [...(now.get(s.offset) ?? s.labels ?? [])].sort() } : {};
      const thread = rec?.threads.get(s.offset);
      yield { mailbox, id, size: s.size, flags: s.flags, ...(date === undefined ? {} : { internalDate: date }), ...labels, ...(thread === undefined ? {} : { threadId: thread }) };
    }
  }

  /** Each message's header block (the index knows where it ends), without reading large bodies. */
  async *headers(mailbox: MailboxInfo): AsyncIterable<HeaderSample> {
    const file = this.fileOf(mailbox);
    const { spans, stateless } = await this.index(file);
    // The source id the state records at each offset (while the state describes the file).
    const origins = stateless ? new Map<number, Origin>() : (await this.recorded(file)).origins(spans.map((s) => s.offset));
    // Without our state a final LF may be framing we added: the size without it is offered too.
    const fh = stateless && spans.length > 0 ? await openNoFollow(file, 'r').catch((e: unknown) => {
      throw localError('mailbox', e, `mbox ${file}`);
    }) : undefined;
    try {
      for await (const { span, raw } of headerBlocks(file, spans)) {
        const altSize = fh === undefined ? undefined : await sizeWithoutFinalLf(fh, span, file);
        const origin = origins.get(span.offset);
        yield { id: String(span.offset), size: span.size, header: lfToCrlf(unquoteMboxrd(raw)), ...(altSize === undefined ? {} : { altSize }), ...(origin === undefined ? {} : { origin }) };
      }
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /**
   * Each message read from its span: up to `streamThreshold` (wire size) into a Buffer, above it
   * streamed from the file through MboxWireStream (un-quoted, LF -> CRLF on the way), never whole.
   */
  async *fetch(batch: readonly MessageMeta[], signal: AbortSignal): AsyncIterable<Fetched> {
    const first = batch[0];
    if (first === undefined) return;
    const file = this.fileOf(first.mailbox);
    const { byOffset } = await this.index(file);
    const sorted = [...batch].sort((a, b) => Number(a.id) - Number(b.id));
    let fh: FileHandle | undefined;
    try {
      for (const meta of sorted) {
        if (signal.aborted) throw new MailferryError('interrupted', 'interrupted');
        const span = byOffset.get(Number(meta.id));
        if (span === undefined) continue; // gone (file rewritten or shortened)
        if (span.size > this.opts.streamThreshold) {
          yield { meta, body: streamRange(file, span.start, span.end) };
          continue;
        }
        fh ??= await openNoFollow(file, 'r').catch((e: unknown) => {
          throw localError('mailbox', e, `mbox ${file}`);
        });
        yield { meta, body: lfToCrlf(unquoteMboxrd(await readRange(fh, span.start, span.end, file))) };
      }
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /** Offsets where no message starts any more (the file read anew) are gone. */
  async missing(mailbox: MailboxInfo, ids: readonly string[]): Promise<Missing> {
    const present = mailbox.noSelect === true ? new Map() : (await this.index(this.fileOf(mailbox), true)).byOffset;
    return { gone: new Set(ids.filter((id) => !present.has(Number(id)))) };
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }
}

interface Index {
  readonly spans: readonly MboxSpan[];
  readonly byOffset: ReadonlyMap<number, MboxSpan>;
  /** No state describes the file (none, or another program rewrote it): no noEol offsets known. */
  readonly stateless: boolean;
}

/** What tells that a file changed since it was indexed. */
interface Stamp {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
}

function sameStamp(a: Stamp, b: Stamp): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

/** Bytes start..end of the file as the wire form, streamed (a read error is the message's). */
function streamRange(file: string, start: number, end: number): Readable {
  const wire = new MboxWireStream();
  if (end <= start) {
    wire.end();
    return wire;
  }
  let raw: Readable;
  try {
    raw = createReadStream(file, { fd: openNoFollowSync(file, 'r'), start, end: end - 1 });
  } catch (e: unknown) {
    wire.destroy(localError('message', e, `message at ${start} in ${file}`));
    return wire;
  }
  raw.on('error', (e: unknown) => wire.destroy(localError('message', e, `message at ${start} in ${file}`)));
  wire.on('close', () => raw.destroy());
  return raw.pipe(wire);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * The date of a From_ line, "From sender Www Mmm dd hh:mm:ss yyyy" (asctime, UTC as we write it;
 * RFC 4155 §2). Anything else (another writer's zone suffix) is read best effort or not at all.
 */
export function dateOfFromLine(line: string): Date | undefined {
  const m = /([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2})(?::(\d{2}))? (\d{4})/.exec(line.slice(5));
  if (m === null) return undefined;
  const month = MONTHS.indexOf(m[1] as string);
  if (month === -1) return undefined;
  return new Date(Date.UTC(Number(m[6]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5] ?? '0')));
}
