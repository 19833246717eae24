import type { Readable } from 'node:stream';
import type { MessageMeta } from '../domain/message.js';
import { dateHeader } from '../formats/date-header.js';
import { headerBlock } from '../formats/fingerprint.js';
import type { Logger } from '../log/logger.js';

/**
 * The date an archive sink keeps for a message (Maildir: the file's mtime; mbox: the From_ line).
 * A server's INTERNALDATE that is not a date (`garbage`, `31-Feb-2020 99:99:99 +9999`: the IMAP
 * adapter hands out an invalid Date, or one beyond year 9999) is the message's problem, not the
 * folder's: the message is archived with its Date: header (a body held in memory), else with no
 * date, which the sinks treat as a POP3 message's (the time of the backup, recorded as first
 * seen), and a warning says so. A valid date is kept as it is.
 */
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59);
const MIN_TIME = Date.UTC(1, 0, 1);

export function usableDate(d: Date): boolean {
  const t = d.getTime();
  return Number.isFinite(t) && t >= MIN_TIME && t <= MAX_TIME;
}

export function withUsableDate(meta: MessageMeta, body: Buffer | Readable, log: Logger | undefined): MessageMeta {
  const d = meta.internalDate;
  if (d === undefined || usableDate(d)) return meta;
  const header = Buffer.isBuffer(body) ? dateHeader(headerBlock(body)) : undefined;
  const fallback = header !== undefined && usableDate(header) ? header : undefined;
  log?.warn(
    `${meta.mailbox.path} ${meta.id}: the server's INTERNALDATE is not a date; archived with ${fallback === undefined ? 'the time of the backup' : 'its Date: header'}`,
  );
  const { internalDate: _bad, ...rest } = meta;
  return fallback === undefined ? rest : { ...rest, internalDate: fallback };
}
