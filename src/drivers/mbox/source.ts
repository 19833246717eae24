import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MailferryError, errnoCode } from '../../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../../domain/message.js';
import { lfToCrlf } from '../../formats/encoder.js';
import { headerBlock, wireSizeOfLf } from '../../formats/fingerprint.js';
import { readMbox, type MboxEntry } from '../../formats/mbox-reader.js';
import type { Logger } from '../../log/logger.js';
import { defaultPlace, mboxFolderFile, placePath, unescapeComponent } from '../archive-paths.js';
import { compareMailboxes as byPath } from '../../domain/message.js';
import { linkError } from '../../state/no-follow.js';
import { loadArchiveState, type ArchiveState, type RecordedName } from '../../state/archive-state.js';
import { DEFAULT_UID_VALIDITY, localError } from '../local.js';
import type { Fetched, HeaderSample, Missing, Selected, Source } from '../../sources/source.js';

/**
 * An mbox archive (as MboxSink writes it: mboxrd, Thunderbird layout) read back as a Source, for
 * `restore --from mbox:DIR`.
 *
 * - Mailboxes: every regular file below the root whose name does not start with '.' is a folder;
 *   a directory `X.sbd` holds the children of `X`, and `X` is \Noselect when there is no file `X`.
 *   Names are unescaped (`\2f` -> `/`, `\78.sbd` -> `x.sbd`), paths are Unicode with delimiter
 *   '/'; a folder whose state entry records its delimiter gets its source name and delimiter back.
 * - uidValidity: as recorded in the archive's state file for the folder, else 1.
 * - Ids: the byte offset of the message's From_ line, in decimal; stable while the file is only
 *   appended to (as the sink does). A file rewritten by another program (a MUA expunging) changes
 *   them; a message whose offset no longer starts a message is not yielded by fetch().
 * - Only the committed part of the file is read: up to the state file's `end` when it has one, so a
 *   message torn by a crashed backup is never offered. The state's `noEol` offsets tell which
 *   messages had no final newline, so their bytes come back exact.
 * - list() has to read the whole file (flags live in each message's Status/X-Status/X-Keywords
 *   lines); `size` is the exact wire size. internalDate is the From_ line's date (asctime, UTC).
 * - fetch() yields lfToCrlf(original bytes). readMbox holds one message at a time, so memory is
 *   bounded by the largest message (it is not streamed from disk); a message over
 *   `streamThreshold` is still handed over as a Readable, as the contract asks.
 */
export interface MboxSourceOptions {
  root: string;
  streamThreshold: number;
  log: Logger;
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
    this.folders = found;
    return [...found.values()].map((f) => f.info).sort(byPath);
  }

  private fileOf(mailbox: MailboxInfo): string {
    return this.folders?.get(mailbox.path)?.file ?? mboxFolderFile(this.opts.root, mailbox);
  }

  /** noEol offsets, the committed end, and uidValidity of a folder, from the archive's state. */
  private async recorded(file: string): Promise<{ noEol: Set<number>; end?: number; uidValidity?: string; labelled: boolean }> {
    const key = (await this.names()).get(file)?.path;
    const f = key === undefined ? undefined : (await this.state)?.checkpoint?.folder(key);
    return {
      noEol: new Set(f?.noEol ?? []),
      labelled: (f?.labels?.size ?? 0) > 0,
      ...(f?.end === undefined ? {} : { end: f.end }),
      ...(f?.uidValidity === undefined ? {} : { uidValidity: f.uidValidity }),
    };
  }

  /** Entries of the committed part of the file, from `start`. */
  private async *entries(file: string, start = 0): AsyncGenerator<MboxEntry> {
    const rec = await this.recorded(file);
    let size: number;
    try {
      const st = await lstat(file);
      if (st.isSymbolicLink()) throw linkError(file); // never followed (state/no-follow.ts)
      size = st.size;
    } catch (e: unknown) {
      if (errnoCode(e) === 'ENOENT') return;
      throw localError('mailbox', e, `mbox ${file}`);
    }
    // A file shorter than recorded was rewritten by someone else: read all of it.
    const end = rec.end !== undefined && rec.end <= size ? rec.end : size;
    if (start >= end) return;
    try {
      yield* readMbox(file, rec.noEol, start, end, rec.labelled);
    } catch (e: unknown) {
      throw localError('mailbox', e, `mbox ${file}`);
    }
  }

  async select(mailbox: MailboxInfo): Promise<Selected> {
    const file = this.fileOf(mailbox);
    const rec = await this.recorded(file);
    const uidValidity = rec.uidValidity === undefined ? DEFAULT_UID_VALIDITY : BigInt(rec.uidValidity);
    let count = 0;
    if (mailbox.noSelect !== true) for await (const _e of this.entries(file)) count++;
    return { mailbox: { ...mailbox, uidValidity }, count };
  }

  async *list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta> {
    for await (const e of this.entries(this.fileOf(mailbox))) {
      const id = String(e.offset);
      if (!wanted(id)) continue;
      const date = dateOfFromLine(e.fromLine);
      yield {
        mailbox,
        id,
        size: wireSizeOfLf(e.body),
        flags: e.flags,
        ...(date === undefined ? {} : { internalDate: date }),
      };
    }
  }

  async *headers(mailbox: MailboxInfo): AsyncIterable<HeaderSample> {
    for await (const e of this.entries(this.fileOf(mailbox))) {
      yield { id: String(e.offset), size: wireSizeOfLf(e.body), header: lfToCrlf(headerBlock(e.body)) };
    }
  }

  async *fetch(batch: readonly MessageMeta[], signal: AbortSignal): AsyncIterable<Fetched> {
    const first = batch[0];
    if (first === undefined) return;
    const file = this.fileOf(first.mailbox);
    const sorted = [...batch].sort((a, b) => Number(a.id) - Number(b.id));
    for (const meta of sorted) {
      if (signal.aborted) throw new MailferryError('interrupted', 'interrupted');
      const offset = Number(meta.id);
      if (!Number.isSafeInteger(offset) || offset < 0) continue;
      let entry: MboxEntry | undefined;
      // The first entry from `offset` is the message when a From_ line starts there.
      for await (const e of this.entries(file, offset)) {
        if (e.offset === offset) entry = e;
        break;
      }
      if (entry === undefined) continue; // gone (file rewritten or shortened)
      const bytes = lfToCrlf(entry.body);
      yield { meta, body: bytes.length > this.opts.streamThreshold ? chunked(bytes) : bytes };
    }
  }

  /** Offsets where no message starts any more (the file read anew) are gone. */
  async missing(mailbox: MailboxInfo, ids: readonly string[]): Promise<Missing> {
    const present = new Set<string>();
    if (mailbox.noSelect !== true) for await (const e of this.entries(this.fileOf(mailbox))) present.add(String(e.offset));
    return { gone: new Set(ids.filter((id) => !present.has(id))) };
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }
}

/** A large body as a Readable of 64 KiB chunks (the contract: over the threshold means a stream). */
function chunked(b: Buffer): Readable {
  const size = 1 << 16;
  return Readable.from(
    (function* () {
      for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
    })(),
    { objectMode: false },
  );
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
