import { destinationError, errnoCode, MailferryError } from '../domain/errors.js';
import { isInbox, pathComponents, type MailboxInfo } from '../domain/message.js';
import type { Logger } from '../log/logger.js';
import type { Checkpoint } from '../state/checkpoint.js';
import { NamesFile } from '../state/names-file.js';
import { ArchiveNames } from './archive-names.js';
import { defaultPlace, NAME_MAX, PATH_MAX, placePath, unescapeComponent, type ArchiveLayout } from './archive-paths.js';

/**
 * What the two archive Sinks share about places: the folder list is planned against the state's
 * recorded places (ArchiveNames), and each folder's delimiter, its place when it is not the
 * plain one, and the Gmail label it shows (MailboxInfo.label), is recorded in the state's places when the folder is opened, before anything is
 * written into it, so that a rerun finds it again and the archive read back as a Source names it.
 * The folder's record (what is durable) is the sink's own business and is not touched, but for a
 * folder that lost a place it shared with another (its record is dropped: it starts afresh).
 *
 * A place that does not read back as the folder's name (shortened: too long for a file name) is
 * also recorded, with its parents', in the archive's names file (state/names-file.ts), before the
 * state, so the archive names its folders without the state. A folder that has no place (no room
 * for a name), or whose path would be longer than the file system takes (PATH_MAX, with room for a
 * message's file name below it), is a `mailbox` error: that folder is skipped and named, the run
 * goes on (exit 3); so is an ENAMETOOLONG the file system still gives (`folderError`).
 */
export class SinkPlaces {
  private names: ArchiveNames | undefined;
  private namesFile: Promise<NamesFile> | undefined;

  constructor(
    private readonly root: string,
    private readonly layout: ArchiveLayout,
    private readonly checkpoint: Checkpoint,
    private readonly log: Logger | undefined,
  ) {}

  /** Every mailbox of the source, once, before any is opened. */
  plan(mailboxes: readonly MailboxInfo[]): void {
    this.load(mailboxes).plan(mailboxes);
  }

  /** Where `mailbox` lies (a Maildir directory or an mbox file); nothing recorded. */
  pathOf(mailbox: Pick<MailboxInfo, 'path' | 'delimiter'>): string {
    return placePath(this.root, this.layout, this.load([mailbox]).placeOf(mailbox));
  }

  /** Where `mailbox` lies, recorded in the state's places (saved at once when not the plain place). */
  async open(mailbox: MailboxInfo): Promise<string> {
    const names = this.load([mailbox]);
    const place = names.placeOf(mailbox);
    const path = placePath(this.root, this.layout, place);
    // A Maildir folder holds `cur/<message file>`; an mbox file is the deepest name itself.
    const room = this.layout === 'mbox' ? 0 : '/cur/'.length + NAME_MAX;
    const longest = Buffer.byteLength(path) + room;
    if (longest >= PATH_MAX) {
      const what = room === 0 ? `${longest} bytes` : `${longest} bytes with a message's file name`;
      throw new MailferryError('mailbox', `its path in the archive would be too long for the file system (${what}; PATH_MAX is ${PATH_MAX})`);
    }
    await this.describe(mailbox, place);
    const plain = defaultPlace(this.layout, mailbox).join('\0') === place.join('\0');
    if (names.moved(mailbox.path) && this.checkpoint.folder(mailbox.path) !== undefined) {
      // An older version wrote two folders to one place: this one starts afresh at its own.
      this.log?.warn(`${mailbox.path}: shared its place in the archive with another folder; archived again in ${path}`);
      this.checkpoint.forget(mailbox.path);
    }
    const before = this.checkpoint.placeOf(mailbox.path);
    // A folder showing a Gmail label records it (read back without guessing: maildir/gmail-archive.ts).
    const now = { delimiter: mailbox.delimiter, ...(plain ? {} : { place }), ...(mailbox.label === undefined ? {} : { label: mailbox.label }) };
    if (before?.delimiter === now.delimiter && (before.place ?? []).join('\0') === (now.place ?? []).join('\0') && before.label === now.label) return path;
    this.checkpoint.setPlace(mailbox.path, now);
    // Durable before anything is written there: a rerun must find the folder at the same place.
    if (!plain) await this.checkpoint.save();
    return path;
  }

  /** Record in the names file each part of `place` that does not read back as its name. */
  private async describe(mailbox: MailboxInfo, place: readonly string[]): Promise<void> {
    const raws = isInbox(mailbox.path) ? ['INBOX'] : pathComponents(mailbox);
    if (place.length !== raws.length) return; // a Maildir's INBOX: the root
    const d = mailbox.delimiter;
    for (let i = 0; i < place.length; i++) {
      const raw = raws[i] as string;
      if (unescapeComponent(place[i] as string) === raw || (i === 0 && isInbox(raw) && place[0] === 'INBOX')) continue;
      const file = await (this.namesFile ??= NamesFile.load(this.root));
      // This part and every folder below it: their names are not on disk.
      for (let j = i; j < place.length; j++) {
        const path = j === place.length - 1 ? mailbox.path : raws.slice(0, j + 1).join(d);
        await file.record(path, { delimiter: d, place: place.slice(0, j + 1) });
      }
      return;
    }
  }

  private load(current: readonly Pick<MailboxInfo, 'path' | 'delimiter'>[]): ArchiveNames {
    if (this.names !== undefined) return this.names;
    const recorded = this.checkpoint.names().map((path) => {
      const p = this.checkpoint.placeOf(path);
      return { path, ...(p === undefined ? {} : { delimiter: p.delimiter }), ...(p?.place === undefined ? {} : { place: p.place }) };
    });
    this.names = new ArchiveNames(this.layout, recorded, current);
    return this.names;
  }
}

/**
 * A file-system error while making a folder's place: ENAMETOOLONG is that folder's problem (a
 * `mailbox` error, the folder skipped, the run goes on), anything else a destination error.
 */
export function folderError(e: unknown, what: string): MailferryError {
  if (errnoCode(e) === 'ENAMETOOLONG') return new MailferryError('mailbox', `cannot write ${what}: a name too long for the file system`, { cause: e });
  return destinationError(e, what);
}
