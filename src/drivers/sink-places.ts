import type { MailboxInfo } from '../domain/message.js';
import type { Logger } from '../log/logger.js';
import type { Checkpoint } from '../state/checkpoint.js';
import { ArchiveNames } from './archive-names.js';
import { defaultPlace, placePath, type ArchiveLayout } from './archive-paths.js';

/**
 * What the two archive Sinks share about places: the folder list is planned against the state's
 * recorded places (ArchiveNames), and each folder's delimiter, and its place when it is not the
 * plain one, is recorded in the state's places when the folder is opened, before anything is
 * written into it, so that a rerun finds it again and the archive read back as a Source names it.
 * The folder's record (what is durable) is the sink's own business and is not touched, but for a
 * folder that lost a place it shared with another (its record is dropped: it starts afresh).
 */
export class SinkPlaces {
  private names: ArchiveNames | undefined;

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
    const plain = defaultPlace(this.layout, mailbox).join('\0') === place.join('\0');
    if (names.moved(mailbox.path) && this.checkpoint.folder(mailbox.path) !== undefined) {
      // An older version wrote two folders to one place: this one starts afresh at its own.
      this.log?.warn(`${mailbox.path}: shared its place in the archive with another folder; archived again in ${path}`);
      this.checkpoint.forget(mailbox.path);
    }
    const before = this.checkpoint.placeOf(mailbox.path);
    const now = { delimiter: mailbox.delimiter, ...(plain ? {} : { place }) };
    if (before?.delimiter === now.delimiter && (before.place ?? []).join('\0') === (now.place ?? []).join('\0')) return path;
    this.checkpoint.setPlace(mailbox.path, now);
    // Durable before anything is written there: a rerun must find the folder at the same place.
    if (!plain) await this.checkpoint.save();
    return path;
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
