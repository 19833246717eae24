import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import { dateHeader } from '../formats/date-header.js';
import type { Logger } from '../log/logger.js';
import type { Source } from './source.js';
import { SourceWrapper } from './wrapper.js';

/**
 * `--since`, `--before`, `--max-size`, `--unseen-only` as one wrapper around any Source (DESIGN
 * habit 8): `list()` yields only the messages the filter accepts, and `filtered(mailbox)` says how
 * many the last `list()` of that mailbox left out, so the pipeline counts them as filtered (neither
 * copied nor "already there"). Everything else passes through. A filtered-out message is never
 * recorded anywhere, so a later run without the filter (or with a wider one) copies it.
 *
 * - Dates compare the message's internal date (IMAP INTERNALDATE, a Maildir file's mtime, an mbox
 *   From_ line): `since <= date < before`. A message without one (POP3) is judged by its Date:
 *   header, read once per mailbox through `headers()` (POP3: TOP n 0) and only when a date bound is
 *   set; a message with neither is kept (a filter never drops what it cannot judge) and logged.
 * - `maxSize` compares `meta.size` (IMAP RFC822.SIZE, POP3 LIST, a Maildir file's S= or LF size);
 *   a message of unknown size is kept.
 * - `unseenOnly` keeps messages without \Seen (a source without flags, POP3, is refused by the
 *   config loaders).
 *
 * The metadata is filtered here, on the client, for every source alike; nothing is pushed down
 * into an IMAP SEARCH: SEARCH SINCE/BEFORE compare dates without time or zone (RFC 3501 6.4.4), so
 * results would differ from a Maildir's by up to a day, and the metadata FETCH the IMAP source
 * already does for `list()` carries INTERNALDATE, RFC822.SIZE and FLAGS.
 */
export interface MessageFilter {
  /** Keep messages dated at or after this instant. */
  since?: Date;
  /** Keep messages dated before this instant. */
  before?: Date;
  /** Keep messages of at most this many bytes. */
  maxSize?: number;
  /** Keep messages without \Seen. */
  unseenOnly?: boolean;
}

export function isEmptyFilter(f: MessageFilter): boolean {
  return f.since === undefined && f.before === undefined && f.maxSize === undefined && f.unseenOnly !== true;
}

/** Why `filter` leaves a message out, or undefined when it keeps it. `date` may stand in for `meta.internalDate`. */
export function rejects(f: MessageFilter, meta: MessageMeta, date = meta.internalDate): string | undefined {
  if (f.maxSize !== undefined && meta.size !== undefined && meta.size > f.maxSize) return 'max-size';
  if (f.unseenOnly === true && [...meta.flags].some((x) => x.toLowerCase() === '\\seen')) return 'unseen-only';
  if (date !== undefined) {
    if (f.since !== undefined && date.getTime() < f.since.getTime()) return 'since';
    if (f.before !== undefined && date.getTime() >= f.before.getTime()) return 'before';
  }
  return undefined;
}

/** The filter around `source`; `source` itself when the filter keeps everything. */
export function filterSource(source: Source, filter: MessageFilter, log: Logger): Source {
  return isEmptyFilter(filter) ? source : new FilterSource(source, filter, log);
}

class FilterSource extends SourceWrapper {
  private readonly counts = new Map<string, number>();

  constructor(
    inner: Source,
    private readonly filter: MessageFilter,
    private readonly log: Logger,
  ) {
    super(inner);
  }

  override async *list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta> {
    const dated = this.filter.since !== undefined || this.filter.before !== undefined;
    let left = 0;
    let dates: Map<string, Date | undefined> | undefined;
    // Every message is listed (not only the wanted ones) so that what is left out can be counted.
    // Ids the inner source accepted but did not yield (a short reply) are passed on to `wanted`
    // at the end, unjudged, so the pipeline sees the gap (a filter never drops what it cannot judge).
    const promised = new Set<string>();
    for await (const meta of this.inner.list(mailbox, (id) => {
      promised.add(id);
      return true;
    })) {
      promised.delete(meta.id);
      let date = meta.internalDate;
      if (date === undefined && dated) {
        dates ??= await this.headerDates(mailbox);
        date = dates.get(meta.id);
        if (date === undefined) this.log.info(`${mailbox.path} ${meta.id}: no date to filter by (no internal date, no Date: header); kept`);
      }
      if (rejects(this.filter, meta, date) !== undefined) left++;
      else if (wanted(meta.id)) yield meta;
    }
    for (const id of promised) wanted(id);
    this.counts.set(mailbox.path, left);
  }

  override filtered(mailbox: MailboxInfo): number {
    return (this.counts.get(mailbox.path) ?? 0) + super.filtered(mailbox);
  }

  /** Date: headers of a mailbox's messages (for those without an internal date), read once per list(). */
  private async headerDates(mailbox: MailboxInfo): Promise<Map<string, Date | undefined>> {
    const out = new Map<string, Date | undefined>();
    for await (const h of this.inner.headers(mailbox)) out.set(h.id, dateHeader(h.header));
    return out;
  }
}
