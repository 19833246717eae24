import type { MailboxInfo } from '../domain/message.js';
import type { OpenArchive } from './archive.js';

/**
 * Which POP3 messages `--delete` / `--delete-older-than` may remove: those on the server that
 * every archive holds durably and, with an age, that were first made durable more than `days`
 * days ago in every archive (the latest first-seen time across archives decides: a message is
 * old only when it is old everywhere). POP3 has no dates, so the age is the archive's own record
 * (Checkpoint.firstSeenOf); an id without one counts from `now` and is recorded so.
 */
export async function deletable(
  onServer: readonly string[],
  archives: readonly OpenArchive[],
  mailbox: MailboxInfo,
  days: number | undefined,
  now: number,
): Promise<string[]> {
  let ids = [...onServer];
  for (const a of archives) {
    const known = (await a.sink.open(mailbox)).known;
    ids = ids.filter((id) => known.has(id));
  }
  if (days === undefined || days === 0) return ids;
  const latest = new Map<string, number>();
  for (const a of archives) {
    for (const [id, t] of a.checkpoint.firstSeenOf(mailbox.path, ids, now)) latest.set(id, Math.max(latest.get(id) ?? t, t));
    await a.checkpoint.save();
  }
  return olderThan(ids, latest, days, now);
}

/** The ids whose time in `seen` (epoch seconds) is more than `days` days before `now`. */
export function olderThan(ids: readonly string[], seen: ReadonlyMap<string, number>, days: number, now: number): string[] {
  const limit = now - days * 86_400;
  return ids.filter((id) => (seen.get(id) ?? now) < limit);
}
