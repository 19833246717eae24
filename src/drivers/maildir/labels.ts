import { link, readdir, unlink } from 'node:fs/promises';
import { checkNoLinks, mkdirNoFollow, openNoFollow } from '../../state/no-follow.js';
import { dirname, join } from 'node:path';
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
 *   records them with their labels (`record`).
 * - `sync` carries label changes on a rerun from the listing's metadata (X-GM-LABELS), without
 *   the bodies, against what the label folders hold on disk (never against the records, which a
 *   crash leaves behind the links): a label missing is linked, an extra link unlinked (the link,
 *   never the file), then recorded. A crash anywhere in `link` or `sync` leaves links that the
 *   next run's `sync` reads and corrects (EEXIST and ENOENT are success).
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

  /**
   * Bring the label folders of archived messages in line with `metas` (their labels as the
   * listing gives them now); resolves with how many messages changed (links or record).
   * The label folders on disk are the truth, not the records: a run killed after a commit's links
   * and before its checkpoint (no record), or in the middle of an earlier sync (the record older
   * than the links), leaves links the records do not describe, and a label changed on the server
   * meanwhile would otherwise keep a stale link. So every run reads what each label folder holds
   * (one readdir per folder, the entries that are links to the labelled folder's files, by their
   * unique base) and links what is missing, unlinks what is extra, then records.
   */
  async sync(metas: readonly MessageMeta[]): Promise<number> {
    const recorded = this.checkpoint.folder(this.key)?.labels;
    const labelled = metas.filter((m) => m.labels !== undefined);
    if (labelled.length === 0) return 0;
    const files = await this.files();
    const linked = await this.linked(new Set([...files.values()].map((f) => parseName(f.slice(4)).base)));
    const touched = new Set<string>();
    const done: MessageMeta[] = [];
    for (const m of labelled) {
      const final = files.get(m.id);
      if (final === undefined) continue; // no file to link (removed by hand): the record stays as it was
      const have = linked.get(parseName(final.slice(4)).base) ?? new Map<string, string[]>();
      const want = new Set(m.labels);
      let moved = false;
      for (const l of want) if (!have.has(l) && (await this.linkOne(final, l, touched))) moved = true;
      for (const [l, paths] of have) {
        if (want.has(l)) continue;
        for (const path of paths) await this.unlinkPath(path, touched);
        moved = true;
      }
      if (moved || !same(recorded?.get(m.id), m)) done.push(m);
    }
    for (const d of touched) await fsyncDir(d);
    if (done.length === 0) return 0;
    this.checkpoint.update(this.key, (f) => this.record(f, done));
    await this.checkpoint.save();
    return done.length;
  }

  /** Link one file into a label's folder; false when nothing was made (no such folder, no hard links, already there). */
  private async linkOne(final: string, label: string, touched: Set<string>): Promise<boolean> {
    const view = this.views.get(label);
    if (view === undefined || this.noLinks !== undefined) return false;
    const dir = await this.folderOf(view);
    const sub = final.slice(0, 3);
    try {
      // The archive is ours: a link is never made through a symbolic link planted in the archive.
      await checkNoLinks(this.root, join(dir, sub));
      await link(join(this.dir, final), join(dir, sub, linkName(final.slice(4))));
      touched.add(join(dir, sub));
      return true;
    } catch (e: unknown) {
      const code = errnoCode(e);
      if (code === 'EEXIST') return false;
      if (code !== undefined && NO_LINKS.has(code)) {
        this.noLinks = code;
        this.log.warn(`${this.root}: this file system has no hard links (${code}): Gmail labels are kept in the archive's state only, the label folders stay empty`);
        return false;
      }
      throw destinationError(e, `folder ${dir}`);
    }
  }

  private async unlinkPath(path: string, touched: Set<string>): Promise<void> {
    await unlink(path).catch((e: unknown) => {
      if (errnoCode(e) !== 'ENOENT') throw destinationError(e, `file ${path}`);
    });
    touched.add(dirname(path));
  }

  /**
   * What the label folders hold now: the unique base of each of the labelled folder's files
   * (`bases`) -> label -> the paths of its entries. Entries of other files (a label folder of an
   * archive made before Gmail mode) are not ours to change and are left out.
   */
  private async linked(bases: ReadonlySet<string>): Promise<Map<string, Map<string, string[]>>> {
    const out = new Map<string, Map<string, string[]>>();
    for (const [label, view] of this.views) {
      const dir = await this.folderOf(view);
      for (const sub of ['cur', 'new']) {
        await checkNoLinks(this.root, join(dir, sub));
        for (const name of await readdir(join(dir, sub))) {
          const base = parseName(name).base;
          if (!bases.has(base)) continue;
          let byLabel = out.get(base);
          if (byLabel === undefined) out.set(base, (byLabel = new Map()));
          byLabel.set(label, [...(byLabel.get(label) ?? []), join(dir, sub, name)]);
        }
      }
    }
    return out;
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
  const head = `${p.base}${p.size === undefined ? '' : `,S=${p.size}`}${p.wireSize === undefined ? '' : `,W=${p.wireSize}`}`;
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

