import { link, readdir, unlink } from 'node:fs/promises';
import { checkNoLinks, mkdirNoFollow, openNoFollow } from '../../state/no-follow.js';
import { join } from 'node:path';
import { destinationError, errnoCode } from '../../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../../domain/message.js';
import { parseName } from '../../formats/maildir-name.js';
import type { Logger } from '../../log/logger.js';
import { fsyncDir } from '../../state/atomic.js';
import type { Checkpoint, FolderCheckpoint, LabelRecord } from '../../state/checkpoint.js';
import { recordLabels } from '../labels.js';
import type { SinkPlaces } from '../sink-places.js';

/**
 * Gmail labels in a Maildir archive, each message stored once. The labelled folder (All Mail)
 * holds the files; every label the source shows as a folder (MailboxInfo.label: INBOX for
 * `\Inbox`, Sent Mail for `\Sent`, `Work/Projects` ...) is a Maildir folder of its own whose
 * entries are hard links to those files, named like the file without its U= (the id is All
 * Mail's, not the label folder's) and without keyword letters (they index All Mail's
 * dovecot-keywords). Mutt, Dovecot and Python's mailbox read each folder as usual; `ls -i` shows
 * one inode per message.
 *
 * - `link` runs in a commit, after the files are renamed into place and before the checkpoint
 *   records them with their labels (`record`): a crash in between leaves links the rerun finds
 *   already there (EEXIST is success).
 * - `sync` carries label changes on a rerun from the listing's metadata (X-GM-LABELS), without
 *   the bodies: a new label is linked, a removed one unlinked (the link, never the file), then
 *   recorded. Unlink first, record after: a crash in between unlinks nothing twice (ENOENT).
 * - A file system without hard links (EPERM, ENOTSUP, EXDEV ...): said once, the labels are
 *   then kept in the state only (`labels` of the folder's record), the label folders stay empty.
 * - A label no listed folder shows (hidden from IMAP in Gmail's settings) is recorded, not linked.
 * - After a UIDVALIDITY change (a re-match renames the files), a record may for a while name
 *   another message's labels: links are found by the file's unique base, so `sync` links what is
 *   missing and unlinks only that file's own links, and the records come right again.
 */
export class LabelLinks {
  private readonly made = new Map<string, Promise<string>>();
  private noLinks: string | undefined;

  constructor(
    private readonly root: string,
    /** The label folders the source listed, by label. */
    private readonly views: ReadonlyMap<string, MailboxInfo>,
    private readonly places: SinkPlaces,
    private readonly dir: string,
    private readonly checkpoint: Checkpoint,
    private readonly key: string,
    private readonly log: Logger,
  ) {}

  /** Link each newly durable file (`final`: `cur/<name>` below the labelled folder) into its labels' folders. */
  async link(files: readonly { final: string; meta: MessageMeta }[]): Promise<void> {
    const touched = new Set<string>();
    for (const { final, meta } of files) {
      for (const label of meta.labels ?? []) await this.linkOne(final, label, touched);
    }
    for (const d of touched) await fsyncDir(d);
  }

  /** The records of `metas` (the labels they were archived with), into a folder's checkpoint. */
  record(f: FolderCheckpoint, metas: readonly MessageMeta[]): void {
    recordLabels(f, metas);
  }

  /** Carry label changes of archived messages; resolves with how many messages changed. */
  async sync(metas: readonly MessageMeta[]): Promise<number> {
    const recorded = this.checkpoint.folder(this.key)?.labels;
    const changed = metas.filter((m) => m.labels !== undefined && !same(recorded?.get(m.id), m));
    if (changed.length === 0) return 0;
    const files = await this.files();
    const touched = new Set<string>();
    const done: MessageMeta[] = [];
    for (const m of changed) {
      const before = new Set(recorded?.get(m.id)?.labels ?? []);
      const now = new Set(m.labels ?? []);
      const final = files.get(m.id);
      if (final === undefined) continue; // no file to link (removed by hand): the record stays as it was
      for (const l of now) if (!before.has(l)) await this.linkOne(final, l, touched);
      for (const l of before) if (!now.has(l)) await this.unlinkOne(final, l, touched);
      done.push(m);
    }
    for (const d of touched) await fsyncDir(d);
    if (done.length === 0) return 0;
    this.checkpoint.update(this.key, (f) => this.record(f, done));
    await this.checkpoint.save();
    return done.length;
  }

  private async linkOne(final: string, label: string, touched: Set<string>): Promise<void> {
    const view = this.views.get(label);
    if (view === undefined || this.noLinks !== undefined) return;
    const dir = await this.folderOf(view);
    const sub = final.slice(0, 3);
    try {
      // The archive is ours: a link is never made through a symbolic link planted in the archive.
      await checkNoLinks(this.root, join(dir, sub));
      await link(join(this.dir, final), join(dir, sub, linkName(final.slice(4))));
      touched.add(join(dir, sub));
    } catch (e: unknown) {
      const code = errnoCode(e);
      if (code === 'EEXIST') return;
      if (code !== undefined && NO_LINKS.has(code)) {
        this.noLinks = code;
        this.log.warn(`${this.root}: this file system has no hard links (${code}): Gmail labels are kept in the archive's state only, the label folders stay empty`);
        return;
      }
      throw destinationError(e, `folder ${dir}`);
    }
  }

  private async unlinkOne(final: string, label: string, touched: Set<string>): Promise<void> {
    const view = this.views.get(label);
    if (view === undefined) return;
    const dir = await this.folderOf(view);
    const base = parseName(final.slice(4)).base;
    for (const sub of ['cur', 'new']) {
      await checkNoLinks(this.root, join(dir, sub));
      for (const name of await readdir(join(dir, sub))) {
        if (parseName(name).base !== base) continue;
        await unlink(join(dir, sub, name)).catch((e: unknown) => {
          if (errnoCode(e) !== 'ENOENT') throw destinationError(e, `folder ${dir}`);
        });
        touched.add(join(dir, sub));
      }
    }
  }

  /** The label folder's directory, made a Maildir once per run (its place recorded as any folder's). */
  private folderOf(view: MailboxInfo): Promise<string> {
    let p = this.made.get(view.path);
    if (p === undefined) {
      p = makeMaildir(this.root, this.places, view);
      this.made.set(view.path, p);
    }
    return p;
  }

  /** id -> `cur/<name>` or `new/<name>` of the labelled folder's files (by their U=). */
  private async files(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const sub of ['cur', 'new']) {
      for (const name of await readdir(join(this.dir, sub))) {
        const uid = parseName(name).uid;
        if (uid !== undefined) out.set(uid, `${sub}/${name}`);
      }
    }
    return out;
  }
}

/** Where hard links cannot be made: the file system does not have them, or not across these directories. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK']);

/** A label folder's entry name: the file's, without U= and keyword letters. */
function linkName(name: string): string {
  const p = parseName(name);
  const info = p.info.replace(/[^A-Z]/g, '');
  const head = `${p.base}${p.size === undefined ? '' : `,S=${p.size}`}`;
  return name.includes(':2,') ? `${head}:2,${info}` : head;
}

function same(r: LabelRecord | undefined, m: MessageMeta): boolean {
  const a = r?.labels ?? [];
  const b = m.labels ?? [];
  return r !== undefined && a.length === b.length && a.every((l, i) => l === b[i]);
}

/** A folder of the archive as a Maildir (tmp, new, cur; `maildirfolder` below the root), 0700. */
export async function makeMaildir(root: string, places: SinkPlaces, mailbox: MailboxInfo): Promise<string> {
  const dir = await places.open(mailbox).catch((e: unknown) => {
    throw destinationError(e, `archive ${root}`);
  });
  try {
    // Never through a link (no-follow.ts): the folder, tmp/, new/, cur/.
    for (const sub of ['tmp', 'new', 'cur']) await mkdirNoFollow(root, join(dir, sub));
    if (dir !== root) await (await openNoFollow(join(dir, 'maildirfolder'), 'a', 0o600)).close();
  } catch (e: unknown) {
    throw destinationError(e, `folder ${dir}`);
  }
  return dir;
}

