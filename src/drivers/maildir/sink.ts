import { closeSync, fsync, futimesSync, renameSync, unlinkSync } from 'node:fs';
import { lstat, mkdir, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { destinationError } from '../../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../../domain/message.js';
import { ArchiveEncoder } from '../../formats/encoder.js';
import { fileName, idField, infoOf, parseName, uniqueBase, withoutUid, withUid } from '../../formats/maildir-name.js';
import { epochSeconds, keepFirstSeen, markFirstSeen, type Checkpoint } from '../../state/checkpoint.js';
import { fsyncDir } from '../../state/atomic.js';
import { mkdirNoFollow, openNoFollow, openNoFollowSync } from '../../state/no-follow.js';
import { KeywordTable } from './keywords.js';
import { fileKey, wireSizeOf } from './file-key.js';
import { LabelLinks, makeMaildir } from './labels.js';
import { labelFolder } from '../labels.js';
import { folderError, SinkPlaces } from '../sink-places.js';
import type { Fingerprint, Match, Sink, SinkFolder, Tx } from '../../sinks/sink.js';
import { writeAllSyncAt, writeEncoded } from '../body.js';
import { withUsableDate } from '../archive-date.js';
import type { Logger } from '../../log/logger.js';

/**
 * Maildir archive. Layout `maildir++` (default; what Dovecot uses): INBOX is the root, other
 * folders are `.A.B` directories beside it. Layout `fs`: `A/B` directories. Each folder has a
 * directory of its own (`plan`, then `open`: see ../archive-names.ts). Messages go to cur/
 * with their flags in the info part, or to new/ when they have no flag at all (unread, never
 * seen: every POP3 message); mtime = INTERNALDATE; LF line endings; the name carries the file's
 * size and its wire size (`,S=`, `,W=`, as Dovecot writes them) and the source id (`,U=`).
 * Writing: tmp/ -> fsync -> rename into cur/ -> fsync cur/ -> checkpoint. Files are 0600, dirs 0700.
 * A Gmail source's labels (labels.ts): the `labelled` folder holds the files, each label folder
 * hard links to them.
 */
export type MaildirLayout = 'maildir++' | 'fs';

const MAX_PENDING_SYNCS = 64;

export class MaildirSink implements Sink {
  readonly name: string;
  private readonly places: SinkPlaces;
  /** Label folders of the source (Gmail mode), by label. */
  private readonly views = new Map<string, MailboxInfo>();

  constructor(
    readonly root: string,
    private readonly layout: MaildirLayout,
    private readonly checkpoint: Checkpoint,
    private readonly log: Logger,
  ) {
    this.name = `maildir:${root}`;
    this.places = new SinkPlaces(root, layout, checkpoint, log);
  }

  /** The directory of a folder (planned alone when it was not planned). */
  dirOf(mailbox: Pick<MailboxInfo, 'path' | 'delimiter'>): string {
    return this.places.pathOf(mailbox);
  }

  plan(mailboxes: readonly MailboxInfo[]): Promise<void> {
    this.places.plan(mailboxes);
    for (const m of mailboxes) if (m.label !== undefined) this.views.set(m.label, m);
    return Promise.resolve();
  }

  async open(mailbox: MailboxInfo): Promise<SinkFolder> {
    if (mailbox.label !== undefined) {
      await makeMaildir(this.root, this.places, mailbox);
      return labelFolder(mailbox);
    }
    const dir = await this.places.open(mailbox).catch((e: unknown) => {
      throw destinationError(e, `archive ${this.root}`);
    });
    try {
      await mkdir(this.root, { recursive: true, mode: 0o700 });
      if (mailbox.noSelect) {
        if (this.layout === 'fs') await mkdirNoFollow(this.root, dir);
      } else {
        // Never through a link (no-follow.ts): the folder, tmp/, new/, cur/.
        for (const sub of ['tmp', 'new', 'cur']) await mkdirNoFollow(this.root, join(dir, sub));
        if (dir !== this.root) await (await openNoFollow(join(dir, 'maildirfolder'), 'a', 0o600)).close();
      }
    } catch (e: unknown) {
      throw folderError(e, `folder ${dir}`);
    }
    const links = mailbox.labelled === true ? new LabelLinks(this.root, this.views, this.places, dir, this.checkpoint, mailbox.path, this.log) : undefined;
    const folder = new MaildirFolder(mailbox, dir, this.checkpoint, this.log, links);
    if (!mailbox.noSelect) await folder.init();
    return folder;
  }

  async close(): Promise<void> {
    await this.checkpoint.save().catch(() => undefined);
  }
}

/** Ids durable in a folder; one too long for a file name is found by its hashed U= (idField). */
class KnownIds extends Set<string> {
  readonly hashed = new Set<string>();

  override has(id: string): boolean {
    return super.has(id) || (this.hashed.size > 0 && this.hashed.has(idField(id)));
  }
}

interface Staged {
  id: string;
  tmp: string;
  /** Path below the folder: `cur/<name>:2,<info>`, or `new/<name>` for a message with no flags. */
  final: string;
  /** The message had an internal date (else its first-seen time is recorded). */
  dated: boolean;
  synced: Promise<void>;
  meta: MessageMeta;
}

class MaildirFolder implements SinkFolder {
  known = new Set<string>();
  needsRematch = false;
  private keywords!: KeywordTable;
  private readonly key: string;
  /** A labelled folder's label changes are carried from the listing (LabelLinks.sync). */
  readonly syncFlags?: (metas: readonly MessageMeta[]) => Promise<number>;

  constructor(
    readonly mailbox: MailboxInfo,
    private readonly dir: string,
    private readonly checkpoint: Checkpoint,
    private readonly log: Logger,
    private readonly links?: LabelLinks,
  ) {
    this.key = mailbox.path;
    if (links !== undefined) this.syncFlags = (metas) => links.sync(metas);
  }

  async init(): Promise<void> {
    this.keywords = await KeywordTable.load(this.dir);
    // Staged files a killed run left in tmp/ never counted: remove them.
    for (const f of await readdir(join(this.dir, 'tmp'))) await unlink(join(this.dir, 'tmp', f)).catch(() => undefined);
    const cp = this.checkpoint.folder(this.key);
    const files = await this.files();
    const uidValidity = this.mailbox.uidValidity?.toString();
    if (cp?.uidValidity === uidValidity && cp !== undefined && !cp.rematching) {
      const known = new KnownIds(cp.ids);
      // A run killed between rename and checkpoint left files whose U= is not recorded yet.
      for (const f of files) {
        const uid = parseName(f.name).uid;
        if (uid?.startsWith('#') === true) known.hashed.add(uid);
        else if (uid !== undefined) known.add(uid);
      }
      this.known = known;
    } else if (files.length > 0) {
      this.needsRematch = true;
    } else {
      this.checkpoint.update(this.key, (f) => {
        if (uidValidity === undefined) delete f.uidValidity;
        else f.uidValidity = uidValidity;
        delete f.rematching;
        f.ids = new Set();
        delete f.firstSeen;
      });
      await this.checkpoint.save();
    }
  }

  private async files(): Promise<{ sub: string; name: string }[]> {
    const out: { sub: string; name: string }[] = [];
    for (const sub of ['cur', 'new']) {
      for (const name of await readdir(join(this.dir, sub))) if (!name.startsWith('.')) out.push({ sub, name });
    }
    return out;
  }

  /**
   * Each file's content key, streamed (file-key.ts): the header block hashed as it is read, only
   * the header read when the name's W= is trusted, so a 30 MB message in the folder costs one
   * read chunk, not its size.
   */
  async *fingerprints(): AsyncIterable<Fingerprint> {
    for (const f of await this.files()) {
      const file = join(this.dir, f.sub, f.name);
      const wire = wireSizeOf(parseName(f.name), (await lstat(file)).size);
      yield { key: await fileKey(file, wire), ref: `${f.sub}/${f.name}` };
    }
  }

  /**
   * Relabel the archive for a new UIDVALIDITY: matched files get their new U=, the others lose
   * theirs. The checkpoint says "rematching" meanwhile, so a crash here just makes the next run
   * match again; renames are idempotent.
   */
  async rebase(uidValidity: bigint | undefined, matches: readonly Match[]): Promise<void> {
    this.checkpoint.update(this.key, (f) => {
      f.rematching = true;
    });
    await this.checkpoint.save();
    const newId = new Map(matches.map((m) => [m.ref, m.id]));
    for (const f of await this.files()) {
      const id = newId.get(`${f.sub}/${f.name}`);
      const name = id === undefined ? withoutUid(f.name) : withUid(f.name, id);
      if (name !== f.name) await rename(join(this.dir, f.sub, f.name), join(this.dir, f.sub, name));
    }
    const matchedIds = matches.map((m) => m.id);
    await fsyncDir(join(this.dir, 'cur'));
    await fsyncDir(join(this.dir, 'new'));
    this.checkpoint.update(this.key, (f) => {
      if (uidValidity === undefined) delete f.uidValidity;
      else f.uidValidity = uidValidity.toString();
      delete f.rematching;
      f.ids = new Set(matchedIds);
      keepFirstSeen(f, f.ids);
    });
    await this.checkpoint.save();
    this.known = new Set(matchedIds);
    this.needsRematch = false;
  }

  async begin(): Promise<Tx> {
    const staged: Staged[] = [];
    const folder = this;
    const cleanup = async (): Promise<void> => {
      await Promise.allSettled(staged.map((s) => s.synced));
      await Promise.all(staged.map((s) => unlink(s.tmp).catch(() => undefined)));
      staged.length = 0;
    };
    return {
      async write(meta: MessageMeta, body: Buffer | Readable): Promise<void> {
        // Bound the open files: wait for the oldest pending fsync once too many are in flight.
        if (staged.length >= MAX_PENDING_SYNCS) await staged[staged.length - MAX_PENDING_SYNCS]?.synced;
        staged.push(await folder.stage(withUsableDate(meta, body, folder.log), body));
      },
      async commit(): Promise<void> {
        try {
          await Promise.all(staged.map((s) => s.synced));
          await folder.keywords.save();
          // Renames are quick metadata calls: done inline, not one thread-pool round trip each.
          for (const s of staged) renameSync(s.tmp, join(folder.dir, s.final));
          for (const sub of new Set(staged.map((s) => s.final.slice(0, 3)))) await fsyncDir(join(folder.dir, sub));
          await folder.links?.link(staged);
        } catch (e: unknown) {
          await cleanup();
          throw destinationError(e, `folder ${folder.dir}`);
        }
        const ids = staged.map((s) => s.id);
        const undated = staged.filter((s) => !s.dated).map((s) => s.id);
        const metas = staged.map((s) => s.meta);
        staged.length = 0;
        folder.checkpoint.update(folder.key, (f) => {
          for (const id of ids) f.ids.add(id);
          folder.links?.record(f, metas);
          markFirstSeen(f, undated, epochSeconds());
        });
        for (const id of ids) folder.known.add(id);
        await folder.checkpoint.save();
      },
      abort: cleanup,
    };
  }

  private async stage(meta: MessageMeta, body: Buffer | Readable): Promise<Staged> {
    const base = uniqueBase();
    const tmp = join(this.dir, 'tmp', base);
    if (Buffer.isBuffer(body)) return this.stageBuffer(meta, body, base, tmp);
    let fh;
    try {
      fh = await openNoFollow(tmp, 'wx', 0o600);
    } catch (e: unknown) {
      throw destinationError(e, `folder ${this.dir}`);
    }
    const enc = new ArchiveEncoder(false, true);
    try {
      await writeEncoded(fh, body, enc);
    } catch (e: unknown) {
      // This message's file only, at once: the stream is already destroyed (body.ts), the rest of
      // the transaction stands. The body stream's error is the source's and passes as it is
      // (a MailferryError, body.ts); anything else is this folder's (EFBIG, ENOSPC...).
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw destinationError(e, `folder ${this.dir}`);
    }
    const handle = fh;
    const date = meta.internalDate;
    const synced = (async () => {
      try {
        // mtime is the INTERNALDATE (Dovecot and mbsync read it so); set it before the fsync.
        if (date !== undefined) await handle.utimes(date, date);
        await handle.sync();
      } finally {
        await handle.close();
      }
    })();
    synced.catch(() => undefined);
    return this.staged(meta, base, tmp, enc, synced);
  }

  /**
   * A body held in memory: open, write and set the mtime with direct calls (each a few
   * microseconds into the page cache), so only the fsync goes to the thread pool; the descriptor
   * is closed once it is done. Same steps and order as the streamed path.
   */
  private stageBuffer(meta: MessageMeta, body: Buffer, base: string, tmp: string): Staged {
    const enc = new ArchiveEncoder(false, true);
    let fd: number;
    try {
      fd = openNoFollowSync(tmp, 'wx', 0o600);
    } catch (e: unknown) {
      throw destinationError(e, `folder ${this.dir}`);
    }
    try {
      writeAllSyncAt(fd, [...enc.push(body), ...enc.end()], 0); // a new file: from its start
      const date = meta.internalDate;
      if (date !== undefined) futimesSync(fd, date, date);
    } catch (e: unknown) {
      closeSync(fd);
      try {
        unlinkSync(tmp);
      } catch {
        // already gone
      }
      throw destinationError(e, `folder ${this.dir}`);
    }
    const synced = new Promise<void>((resolve, reject) => {
      fsync(fd, (err) => {
        try {
          closeSync(fd);
        } catch (e: unknown) {
          reject(err ?? e);
          return;
        }
        if (err) reject(err);
        else resolve();
      });
    });
    synced.catch(() => undefined);
    return this.staged(meta, base, tmp, enc, synced);
  }

  private staged(meta: MessageMeta, base: string, tmp: string, enc: ArchiveEncoder, synced: Promise<void>): Staged {
    const dropped: string[] = [];
    const info = infoOf(meta.flags, (kw) => {
      const l = this.keywords.letter(kw);
      if (l === undefined) dropped.push(kw);
      return l;
    });
    if (dropped.length > 0) {
      this.log.warn(`${this.mailbox.path} ${meta.id}: more than 26 keywords in folder; not kept: ${dropped.join(' ')}`);
    }
    // A message without any flag (all of POP3's) is new mail: new/, no info part, as the spec says.
    const name = fileName(base, enc.bytes, enc.wireBytes, meta.id, info);
    const final = meta.flags.size === 0 ? `new/${name.slice(0, name.lastIndexOf(':2,'))}` : `cur/${name}`;
    return { id: meta.id, tmp, final, dated: meta.internalDate !== undefined, synced, meta };
  }
}
