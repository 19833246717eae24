import { lstat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { destinationError, MailferryError } from '../../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../../domain/message.js';
import { fingerprintKey } from '../../formats/fingerprint.js';
import { fromLine, labelsHeader, metadataHeaders } from '../../formats/mbox.js';
import { scanMbox, type MboxSpan } from '../../formats/mbox-reader.js';
import { ArchiveEncoder, unquoteMboxrd } from '../../formats/encoder.js';
import { headerBlocks, sizeWithoutFinalLf, stateFits } from './header-blocks.js';
import { epochSeconds, keepFirstSeen, markFirstSeen, type Checkpoint } from '../../state/checkpoint.js';
import { joinRuns, place, type PlacedRun } from '../../state/placed.js';
import { folderError, SinkPlaces } from '../sink-places.js';
import { checkNoLinks, mkdirNoFollow, openNoFollow } from '../../state/no-follow.js';
import { labelFolder, recordLabels } from '../labels.js';
import { syncLabels } from './gmail-archive.js';
import type { Logger } from '../../log/logger.js';
import type { Fingerprint, Match, Sink, SinkFolder, Tx } from '../../sinks/sink.js';
import { writeAll, writeAllSyncAt, writeEncoded, type Writer } from '../body.js';
import { withUsableDate } from '../archive-date.js';

/**
 * mbox archive: one mboxrd file per folder, laid out as Thunderbird does (`A.sbd/B`), so a folder
 * can hold both messages and children (plain mbox cannot); each folder has a file of its own
 * (`plan`, then `open`: see ../archive-names.ts).
 *
 * Crash safety: one transaction at a time per file; it appends, fsyncs, then records the new file
 * length in the checkpoint. On open, anything past the recorded length (a torn message, or messages
 * written but not recorded) is cut off, before a re-match as before a trusted resume; those
 * messages are fetched again. A file re-matched without our state keeps what it holds, and the
 * first message appended after it gets the empty line a From_ line needs before it.
 *
 * The state records where each recorded id's message is (`placed`, state/placed.ts: a run per
 * transaction, in the commit that records the ids; a re-match records where it found each): the
 * mbox Source hands it out as `origin`, so verify pairs a message with its own copy first.
 */
export class MboxSink implements Sink {
  readonly name: string;
  private readonly places: SinkPlaces;

  constructor(
    readonly root: string,
    private readonly checkpoint: Checkpoint,
    private readonly log?: Logger,
  ) {
    this.name = `mbox:${root}`;
    this.places = new SinkPlaces(root, 'mbox', checkpoint, log);
  }

  /** The file of a folder (planned alone when it was not planned). */
  fileOf(mailbox: Pick<MailboxInfo, 'path' | 'delimiter'>): string {
    return this.places.pathOf(mailbox);
  }

  plan(mailboxes: readonly MailboxInfo[]): Promise<void> {
    this.places.plan(mailboxes);
    return Promise.resolve();
  }

  async open(mailbox: MailboxInfo): Promise<SinkFolder> {
    // A Gmail label folder has no file: its messages are in All Mail's, with an X-Gmail-Labels line.
    if (mailbox.label !== undefined) return labelFolder(mailbox);
    const file = await this.places.open(mailbox).catch((e: unknown) => {
      throw destinationError(e, `archive ${this.root}`);
    });
    try {
      // Never through a link (no-follow.ts): the .sbd directories, then the file itself.
      await mkdirNoFollow(this.root, dirname(file));
      await checkNoLinks(this.root, file);
      if (!mailbox.noSelect) {
        const fh = await openNoFollow(file, 'a', 0o600);
        await fh.close();
      }
    } catch (e: unknown) {
      throw folderError(e, `mbox ${file}`);
    }
    const folder = new MboxFolder(mailbox, file, this.checkpoint, this.log);
    if (!mailbox.noSelect) await folder.init();
    return folder;
  }

  async close(): Promise<void> {
    await this.checkpoint.save().catch(() => undefined);
  }
}

class MboxFolder implements SinkFolder {
  known = new Set<string>();
  needsRematch = false;
  /** The state does not describe the file (another program rewrote it): its offsets are not used. */
  private stale = false;
  /** Every message's offset, as the last fingerprints() found them: where a re-match's runs are. */
  private scanned: number[] | undefined;
  /** Where the last recorded run's messages end, when this folder's last commit wrote them (joinRuns). */
  private placedEnd: number | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly key: string;
  /** The X-Gmail-Labels of each message the last fingerprints() read, by offset (for rebase). */
  private lines = new Map<number, readonly string[]>();
  /** A labelled folder (Gmail's All Mail): label changes are recorded in the state (gmail-archive.ts). */
  readonly syncFlags?: (metas: readonly MessageMeta[]) => Promise<number>;

  constructor(
    readonly mailbox: MailboxInfo,
    private readonly file: string,
    private readonly checkpoint: Checkpoint,
    private readonly log: Logger | undefined,
  ) {
    this.key = mailbox.path;
    if (mailbox.labelled === true) this.syncFlags = (metas) => syncLabels(checkpoint, this.key, metas, log);
  }

  async init(): Promise<void> {
    let size = (await lstat(this.file)).size;
    const cp = this.checkpoint.folder(this.key);
    const uidValidity = this.mailbox.uidValidity?.toString();
    const end = cp?.end;
    // Bytes past the recorded end were written by a transaction that never committed (a kill -9
    // mid-append: part of a message): cut them off first, on every path. The re-match path needs
    // it as much as the trusted one (a folder without a usable UIDVALIDITY takes it on every run):
    // it would take the torn message for an archived one and glue the next From_ line to its last,
    // unfinished line. A file another program rewrote (header-blocks.ts stateFits) is not cut: it
    // is re-matched as a file without our state.
    if (end !== undefined) {
      const fits = await stateFits(this.file, end, size).catch((e: unknown) => {
        throw destinationError(e, `mbox ${this.file}`);
      });
      if (!fits) this.stale = true;
      else if (size > end) {
        await this.cut(end);
        size = end;
      }
    }
    if (cp !== undefined && cp.uidValidity === uidValidity && !cp.rematching && size === end) {
      this.known = new Set(cp.ids);
    } else if (size > 0) {
      // Filled under another UIDVALIDITY, or by someone else, or rewritten behind our back.
      this.needsRematch = true;
    } else {
      this.checkpoint.update(this.key, (f) => {
        if (uidValidity === undefined) delete f.uidValidity;
        else f.uidValidity = uidValidity;
        delete f.rematching;
        f.end = 0;
        f.noEol = [];
        delete f.placed;
        f.ids = new Set();
        delete f.firstSeen;
      });
      await this.checkpoint.save();
    }
  }

  /** Truncates the file to `end`, durably (the cut bytes must not come back after a crash). */
  private async cut(end: number): Promise<void> {
    const fh = await openNoFollow(this.file, 'r+').catch((e: unknown) => {
      throw destinationError(e, `mbox ${this.file}`);
    });
    try {
      await fh.truncate(end);
      await fh.sync();
    } catch (e: unknown) {
      throw destinationError(e, `mbox ${this.file}`);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /**
   * Streams: the file is indexed in one pass (formats/mbox-reader.ts scanMbox, as the mbox Source
   * does) and only header blocks are read (header-blocks.ts), so memory does not grow with a
   * message's size. Only the committed part is read (init() cut the rest).
   */
  async *fingerprints(): AsyncIterable<Fingerprint> {
    const cp = this.stale ? undefined : this.checkpoint.folder(this.key);
    const noEol = new Set(cp?.noEol ?? []);
    const labelled = this.mailbox.labelled === true || (this.checkpoint.folder(this.key)?.labels?.size ?? 0) > 0;
    const spans: MboxSpan[] = [];
    for await (const s of scanMbox(this.file, noEol, cp?.end, labelled)) spans.push(s);
    this.scanned = spans.map((s) => s.offset);
    this.lines = new Map(spans.filter((s) => s.labels !== undefined).map((s) => [s.offset, s.labels as readonly string[]]));
    let fh: FileHandle | undefined;
    try {
      for await (const { span, raw } of headerBlocks(this.file, spans)) {
        const header = unquoteMboxrd(raw);
        const key = fingerprintKey(header, span.size);
        const ref = String(span.offset);
        // Without our state we cannot tell whether the final LF was added to frame the message:
        // the alternative is the message without it (its size, and its header when the header
        // block runs to the message's end).
        const altSize = cp === undefined ? await sizeWithoutFinalLf((fh ??= await openNoFollow(this.file, 'r')), span, this.file) : undefined;
        if (altSize === undefined) {
          yield { key, ref };
          continue;
        }
        const altHeader = span.headerEnd < span.end ? header : header.subarray(0, header.length - 1);
        yield { key, ref, alt: fingerprintKey(altHeader, altSize) };
      }
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  async rebase(uidValidity: bigint | undefined, matches: readonly Match[]): Promise<void> {
    const size = (await lstat(this.file)).size;
    const matchedIds = matches.map((m) => m.id);
    this.checkpoint.update(this.key, (f) => {
      if (uidValidity === undefined) delete f.uidValidity;
      else f.uidValidity = uidValidity.toString();
      delete f.rematching;
      f.end = size;
      f.ids = new Set(matchedIds);
      f.placed = placedMatches(matches, this.scanned);
      this.placedEnd = undefined;
      keepFirstSeen(f, f.ids);
      // A message matched without its final LF had that LF added by us as framing.
      const framed = matches.filter((m) => m.alt === true).map((m) => Number(m.ref));
      // The label records follow the ids: each matched message with the labels of its line, where
      // it lies now (a later syncFlags brings them up to date).
      if (this.mailbox.labelled === true || f.labels !== undefined) {
        f.labels = new Map();
        for (const m of matches) {
          const labels = this.lines.get(Number(m.ref));
          if (labels !== undefined) f.labels.set(m.id, { labels: [...labels], at: Number(m.ref) });
        }
      }
      // A rewritten file's recorded offsets point nowhere now: only what this re-match found.
      if (this.stale) f.noEol = framed;
      else if (framed.length > 0) f.noEol = [...new Set([...(f.noEol ?? []), ...framed])];
    });
    await this.checkpoint.save();
    this.known = new Set(matchedIds);
    this.needsRematch = false;
    this.stale = false;
  }

  begin(): Promise<Tx> {
    let release!: () => void;
    const turn = this.queue;
    this.queue = new Promise<void>((r) => (release = r));
    return turn.then(() => this.openTx(release));
  }

  private async openTx(release: () => void): Promise<Tx> {
    const folder = this;
    const cp = this.checkpoint.folder(this.key);
    const start = cp?.end ?? 0;
    let fh: FileHandle | undefined;
    let pos = start;
    try {
      fh = await openNoFollow(this.file, 'r+');
      // A failed earlier transaction may have left bytes past the recorded end.
      await fh.truncate(start);
      // A From_ line starts a line after an empty one (RFC 4155). Ours always end so; a file
      // re-matched without our state (a foreign one, or ours with the state lost after a crash)
      // may not: the first message appended after it is preceded by what is missing.
      pos += await separatorNeeded(fh, start);
    } catch (e: unknown) {
      await fh?.close().catch(() => undefined);
      release();
      throw destinationError(e, `mbox ${this.file}`);
    }
    const handle = fh;
    const ids: string[] = [];
    /** Where the written messages are (their From_ lines follow one another from `start`). */
    const placed: PlacedRun[] = [];
    const undated: string[] = [];
    const noEol: number[] = [];
    const labelled: MessageMeta[] = [];
    const offsets = new Map<string, number>();
    let done = false;
    const finish = async (): Promise<void> => {
      if (done) return;
      done = true;
      await handle.close().catch(() => undefined);
      release();
    };
    // Writes at an explicit, tracked position (the handle is opened r+, not in append mode, so that
    // the transaction owns exactly the bytes from `start`).
    const positioned: Writer = {
      writev: async (parts: Buffer[]) => {
        const r = await handle.writev(parts, pos);
        pos += r.bytesWritten;
        return r;
      },
    };
    return {
      async write(given: MessageMeta, body: Buffer | Readable): Promise<void> {
        const meta = withUsableDate(given, body, folder.log);
        const at = pos;
        const enc = new ArchiveEncoder(true);
        try {
          const head = Buffer.from(fromLine(meta.internalDate) + metadataHeaders(meta.flags) + labelsHeader(meta.labels), 'utf8');
          let eol: boolean;
          if (Buffer.isBuffer(body)) {
            // In memory: one direct writev into the page cache (the fsync is the commit's).
            const parts = [head, ...enc.push(body), ...enc.end()];
            eol = enc.lastByte === 0x0a;
            parts.push(Buffer.from(eol ? '\n' : '\n\n'));
            pos = writeAllSyncAt(handle.fd, parts, pos);
          } else {
            await writeAll(positioned, [head]);
            await writeEncoded(positioned, body, enc);
            eol = enc.lastByte === 0x0a;
            await writeAll(positioned, [Buffer.from(eol ? '\n' : '\n\n')]);
          }
          if (!eol) noEol.push(at);
        } catch (e: unknown) {
          // The body stream failed (the source's error, a MailferryError: body.ts): only this
          // message is cut back off the file, and the transaction goes on (what was written
          // before it can still be committed). The file's own error ends the transaction.
          if (e instanceof MailferryError && (await handle.truncate(at).then(() => true, () => false))) {
            pos = at;
            throw e;
          }
          await finish();
          throw destinationError(e, `mbox ${folder.file}`);
        }
        ids.push(meta.id);
        place(placed, meta.id, at);
        if (meta.internalDate === undefined) undated.push(meta.id);
        if (meta.labels !== undefined) {
          labelled.push(meta);
          offsets.set(meta.id, at);
        }
      },
      async commit(): Promise<void> {
        try {
          await handle.sync();
        } catch (e: unknown) {
          await finish();
          throw destinationError(e, `mbox ${folder.file}`);
        }
        folder.checkpoint.update(folder.key, (f) => {
          f.end = pos;
          f.noEol = [...(f.noEol ?? []), ...noEol];
          for (const id of ids) f.ids.add(id);
          f.placed = joinRuns(f.placed ?? [], placed, folder.placedEnd === start);
          markFirstSeen(f, undated, epochSeconds());
          recordLabels(f, labelled, offsets);
        });
        try {
          await folder.checkpoint.save();
        } finally {
          await finish();
        }
        folder.placedEnd = pos;
        for (const id of ids) folder.known.add(id);
      },
      async abort(): Promise<void> {
        await handle.truncate(start).catch(() => undefined);
        await finish();
      },
    };
  }
}

/**
 * Where a re-match found the source's messages, as runs (state/placed.ts): matched messages next
 * to each other in the file (`scanned`: every message's offset) with consecutive ids are one run.
 */
function placedMatches(matches: readonly Match[], scanned: readonly number[] | undefined): PlacedRun[] {
  const byAt = new Map(matches.map((m) => [Number(m.ref), m.id]));
  const runs: PlacedRun[] = [];
  let next = false;
  for (const at of scanned ?? [...byAt.keys()].sort((a, b) => a - b)) {
    const id = byAt.get(at);
    if (id !== undefined && next && scanned !== undefined) place(runs, id, at);
    else if (id !== undefined) runs.push({ at, id, count: 1 });
    next = id !== undefined;
  }
  return runs;
}

/** How many LFs the file, `size` bytes long, lacks to end with an empty line ("\n\n"); written at `size`. */
async function separatorNeeded(fh: FileHandle, size: number): Promise<number> {
  if (size === 0) return 0;
  const tail = Buffer.alloc(Math.min(2, size));
  await fh.read(tail, 0, tail.length, size - tail.length);
  const missing = tail[tail.length - 1] !== 0x0a ? 2 : tail.length === 2 && tail[0] !== 0x0a ? 1 : 0;
  if (missing > 0) await fh.write(Buffer.from('\n'.repeat(missing)), 0, missing, size);
  return missing;
}
