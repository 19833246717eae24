import { MailferryError, errnoCode } from '../domain/errors.js';

/**
 * What the local Sources (Maildir, mbox archives) share. An archive without a state file has no
 * UIDVALIDITY of its own; its ids (file names, offsets) are stable anyway, so a constant serves.
 */
export const DEFAULT_UID_VALIDITY = 1n;

/** The unique part of a Maildir file name: everything before the first ',' or ':'. */
export function idOf(name: string): string {
  const m = /[,:]/.exec(name);
  return m === null ? name : name.slice(0, m.index);
}


export function localError(kind: 'mailbox' | 'message', e: unknown, what: string): MailferryError {
  if (e instanceof MailferryError) return e;
  const code = errnoCode(e);
  return new MailferryError(kind, `cannot read ${what}${code === undefined ? '' : ` (${code})`}`, { cause: e });
}
