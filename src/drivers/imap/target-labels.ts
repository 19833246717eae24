import { MailferryError } from '../../domain/errors.js';
import type { MessageMeta } from '../../domain/message.js';
import type { LabelRecord } from '../../state/checkpoint.js';
import { toRanges } from '../../state/ids.js';
import type { FlagFolder } from './flags.js';
import type { Conn } from './pool.js';
import { deselect, STORE_UIDS, storeChange, type TargetSink } from './target-common.js';
import type { Threads } from './threads.js';

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
 * - Threads: X-GM-THRID cannot be set over IMAP (it is read-only); Gmail puts appended mail in
 *   conversations by itself (by Subject and References / In-Reply-To). So after a commit's labels,
 *   in the same session, one UID FETCH X-GM-THRID of the commit's target UIDs tells which thread
 *   Gmail gave each message whose source named one (a Gmail-mode source or archive: `thread`), and
 *   `sink.threads` (threads.ts) keeps per source thread the target threads it became. A source conversation
 *   that became two or more is split; the command says how many (see Threads), not an error: every
 *   message is there. Counted over the messages appended in the run (a conversation continued in a
 *   later run is judged by its new messages only).
 */
export async function storeLabels(sink: TargetSink, path: string, done: readonly { uid?: number; labels?: readonly string[]; thread?: string }[]): Promise<void> {
  const groups = new Map<string, { add: readonly string[]; remove: readonly string[]; uids: number[] }>();
  for (const a of done) {
    if (a.labels === undefined || a.labels.length === 0) continue;
    if (a.uid === undefined) throw new MailferryError('protocol', `${sink.name}: Gmail gave no APPENDUID, so the labels cannot be set`);
    group(groups, a.labels, [], a.uid);
  }
  const threaded = new Map<number, string>();
  for (const a of done) if (sink.gmail && a.thread !== undefined && a.uid !== undefined) threaded.set(a.uid, a.thread);
  if (groups.size === 0 && threaded.size === 0) return;
  await sink.withConn(
    (c) =>
      inFolder(c.client, path, async () => {
        await store(c.client, groups, path);
        if (threaded.size > 0) await readThreads(c.client, threaded, sink.threads);
      }),
    `cannot label messages in "${path}"`,
  );
}

/** One UID FETCH X-GM-THRID per STORE_UIDS of `uids` (target UID -> source thread), into `threads`. */
async function readThreads(client: Conn['client'], uids: ReadonlyMap<number, string>, threads: Threads): Promise<void> {
  const all = [...uids.keys()];
  for (let i = 0; i < all.length; i += STORE_UIDS) {
    for await (const msg of client.fetch(toRanges(all.slice(i, i + STORE_UIDS)), { uid: true, threadId: true }, { uid: true })) {
      const source = uids.get(msg.uid);
      if (source !== undefined && msg.threadId !== undefined) threads.add(source, msg.threadId);
    }
  }
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
    return inFolder(c.client, path, () => store(c.client, groups, path));
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

/** Run `fn` with `path` opened read-write, then leave it without expunging. */
async function inFolder<T>(client: Conn['client'], path: string, fn: () => Promise<T>): Promise<T> {
  await client.mailboxOpen(path);
  try {
    return await fn();
  } finally {
    await deselect(client);
  }
}

/** One UID STORE per change and STORE_UIDS UIDs, on the folder selected read-write; how many messages changed. */
async function store(client: Conn['client'], groups: Groups, path: string): Promise<number> {
  let n = 0;
  for (const g of groups.values()) {
    if (g.add.length + g.remove.length === 0) continue;
    for (let i = 0; i < g.uids.length; i += STORE_UIDS) {
      const set = toRanges(g.uids.slice(i, i + STORE_UIDS));
      await storeChange(client, set, g.add, g.remove, true, path);
    }
    n += g.uids.length;
  }
  return n;
}

function labelKey(labels: readonly string[] | null | undefined): string {
  return labels === null || labels === undefined ? '' : JSON.stringify([...labels].sort());
}
