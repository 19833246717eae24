import { MailferryError } from '../../domain/errors.js';
import type { MessageMeta } from '../../domain/message.js';
import type { LabelRecord } from '../../state/checkpoint.js';
import { toRanges } from '../../state/ids.js';
import type { FlagFolder } from './flags.js';
import type { Conn } from './pool.js';
import { deselect, STORE_UIDS, type TargetSink } from './target-common.js';

/**
 * Gmail as the target: labels are not folders to append into but attributes of the one copy in
 * All Mail (developers.google.com/gmail/imap/imap-extensions: STORE +X-GM-LABELS).
 *
 * - `storeLabels`, in a commit: the messages of the commit are grouped by their label set and
 *   each group labelled with one UID STORE (up to STORE_UIDS UIDs), on the target's All Mail
 *   opened read-write, before the commit records them (ids, target UIDs and the labels stored).
 *   A message appended without a UID (no UIDPLUS) cannot be labelled: said, not guessed.
 * - `syncLabels`, on every rerun (the target folder's `syncFlags`): the labels each message has
 *   on the source now against the labels last stored for it (the checkpoint's `labels` of the
 *   source folder); the difference is stored with `UID STORE +X-GM-LABELS` / `-X-GM-LABELS`, one
 *   STORE per distinct change, with no download and no second APPEND, then recorded. A message
 *   without a record (a run killed between its APPEND and its commit, found again by the re-match;
 *   or a lost state) is compared with the labels the target gives it now (UID FETCH X-GM-LABELS),
 *   so the crash is repaired and a label only the target has stays unless the source lost it.
 */
export async function storeLabels(sink: TargetSink, path: string, done: readonly { uid?: number; labels?: readonly string[] }[]): Promise<void> {
  const groups = new Map<string, { add: readonly string[]; remove: readonly string[]; uids: number[] }>();
  for (const a of done) {
    if (a.labels === undefined || a.labels.length === 0) continue;
    if (a.uid === undefined) throw new MailferryError('protocol', `${sink.name}: Gmail gave no APPENDUID, so the labels cannot be set`);
    group(groups, a.labels, [], a.uid);
  }
  if (groups.size === 0) return;
  await sink.withConn((c) => store(c.client, path, groups), `cannot label messages in "${path}"`);
}

export async function syncLabels(folder: FlagFolder, metas: readonly MessageMeta[]): Promise<number> {
  const { sink, path, log } = folder;
  const f = sink.checkpoint.folder(folder.mailbox.path);
  const uidOf = f?.targetUids ?? new Map<string, number>();
  const last = f?.labels ?? new Map<string, LabelRecord>();
  const changed = metas.filter((m) => m.labels !== undefined && uidOf.has(m.id) && labelKey(last.get(m.id)?.labels ?? null) !== labelKey(m.labels));
  if (changed.length === 0) return 0;
  const n = await sink.withConn(async (c) => {
    // Messages without a record: the labels the target gives them now.
    const unknown = changed.filter((m) => !last.has(m.id)).map((m) => uidOf.get(m.id) as number);
    const now = new Map<number, readonly string[]>();
    if (unknown.length > 0) {
      await c.client.mailboxOpen(path, { readOnly: true });
      for (let i = 0; i < unknown.length; i += STORE_UIDS) {
        const set = toRanges(unknown.slice(i, i + STORE_UIDS));
        for await (const msg of c.client.fetch(set, { uid: true, labels: true }, { uid: true })) now.set(msg.uid, [...(msg.labels ?? [])]);
      }
    }
    const groups = new Map<string, { add: readonly string[]; remove: readonly string[]; uids: number[] }>();
    for (const m of changed) {
      const uid = uidOf.get(m.id) as number;
      const had = new Set(last.get(m.id)?.labels ?? now.get(uid) ?? []);
      if (!last.has(m.id) && !now.has(uid)) continue; // gone from the target
      const want = new Set(m.labels);
      group(groups, [...want].filter((l) => !had.has(l)), [...had].filter((l) => !want.has(l)), uid);
    }
    return store(c.client, path, groups);
  }, `cannot label messages in "${path}"`);
  sink.checkpoint.update(folder.mailbox.path, (g) => {
    for (const m of changed) (g.labels ??= new Map()).set(m.id, { labels: [...(m.labels ?? [])] });
  });
  await sink.checkpoint.save();
  if (n > 0) log.info(`${folder.mailbox.path}: labels updated on ${n} messages on the target`);
  return n;
}

type Groups = Map<string, { add: readonly string[]; remove: readonly string[]; uids: number[] }>;

/** Put `uid` in the group of its change (labels to add, labels to take off). */
function group(groups: Groups, add: readonly string[], remove: readonly string[], uid: number): void {
  const key = JSON.stringify([add, remove]);
  const g = groups.get(key) ?? { add, remove, uids: [] };
  g.uids.push(uid);
  groups.set(key, g);
}

/** One UID STORE per change and STORE_UIDS UIDs, on `path` opened read-write; how many messages changed. */
async function store(client: Conn['client'], path: string, groups: Groups): Promise<number> {
  let n = 0;
  await client.mailboxOpen(path);
  try {
    for (const g of groups.values()) {
      if (g.add.length + g.remove.length === 0) continue;
      for (let i = 0; i < g.uids.length; i += STORE_UIDS) {
        const set = toRanges(g.uids.slice(i, i + STORE_UIDS));
        if (g.add.length > 0) await client.messageFlagsAdd(set, [...g.add], { uid: true, useLabels: true });
        if (g.remove.length > 0) await client.messageFlagsRemove(set, [...g.remove], { uid: true, useLabels: true });
      }
      n += g.uids.length;
    }
  } finally {
    await deselect(client);
  }
  return n;
}

function labelKey(labels: readonly string[] | null | undefined): string {
  return labels === null || labels === undefined ? '' : JSON.stringify([...labels].sort());
}
