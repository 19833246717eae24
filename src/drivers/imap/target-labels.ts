import { MailferryError } from '../../domain/errors.js';
import { deselect, STORE_UIDS, type TargetSink } from './target-common.js';

/**
 * Gmail as the target: labels are not folders to append into but attributes of the one copy in
 * All Mail (developers.google.com/gmail/imap/imap-extensions: STORE +X-GM-LABELS). The messages
 * of a commit are grouped by their label set and each group labelled with one UID STORE (up to
 * STORE_UIDS UIDs), on the target's All Mail opened read-write, before the commit records them:
 * a crash in between leaves them appended and not recorded, found again by the re-match.
 * A message appended without a UID (no UIDPLUS) cannot be labelled: said, not guessed.
 */
export async function storeLabels(sink: TargetSink, path: string, done: readonly { uid?: number; labels?: readonly string[] }[]): Promise<void> {
  const groups = new Map<string, { labels: readonly string[]; uids: number[] }>();
  for (const a of done) {
    if (a.labels === undefined || a.labels.length === 0) continue;
    if (a.uid === undefined) throw new MailferryError('protocol', `${sink.name}: Gmail gave no APPENDUID, so the labels cannot be set`);
    const key = JSON.stringify(a.labels);
    const g = groups.get(key) ?? { labels: a.labels, uids: [] };
    g.uids.push(a.uid);
    groups.set(key, g);
  }
  if (groups.size === 0) return;
  await sink.withConn(async (c) => {
    await c.client.mailboxOpen(path);
    try {
      for (const g of groups.values()) {
        for (let i = 0; i < g.uids.length; i += STORE_UIDS) {
          await c.client.messageFlagsAdd(g.uids.slice(i, i + STORE_UIDS).join(','), [...g.labels], { uid: true, useLabels: true });
        }
      }
    } finally {
      await deselect(c.client);
    }
  }, `cannot label messages in "${path}"`);
}
