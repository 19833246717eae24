import type { MessageMeta, MailboxInfo } from '../../domain/message.js';
import type { Logger } from '../../log/logger.js';
import { toRanges } from '../../state/ids.js';
import { flagKey, flagsOfKey } from '../../state/synced.js';
import { deselect, STORE_UIDS, storeChange, type TargetSink } from './target-common.js';

/**
 * The IMAP target's `syncFlags` (Sink contract): flag and keyword changes made on the source since
 * mailferry last wrote a message's flags, carried with `UID STORE +FLAGS`/`-FLAGS` (so a flag set
 * only on the target stays), one STORE per distinct change over all the UIDs it applies to. Only
 * messages whose target UID the state knows are touched; one without a record of its last flags
 * (after a re-match) is compared with what the target holds now. The flags written are recorded.
 */
export interface FlagFolder {
  readonly sink: TargetSink;
  /** The source mailbox (the checkpoint's key). */
  readonly mailbox: MailboxInfo;
  /** The target folder. */
  readonly path: string;
  readonly log: Logger;
}

export async function syncFlags(folder: FlagFolder, metas: readonly MessageMeta[]): Promise<number> {
  const { sink, log, path } = folder;
  const f = sink.checkpoint.folder(folder.mailbox.path);
  const uidOf = f?.targetUids ?? new Map<string, number>();
  const last = f?.flags ?? new Map<string, string>();
  const changed = metas.filter((m) => uidOf.has(m.id) && last.get(m.id) !== flagKey(m.flags));
  const unmapped = metas.filter((m) => !uidOf.has(m.id)).length;
  if (unmapped > 0) log.debug(`${folder.mailbox.path}: ${unmapped} messages without a known target UID; their flags are not carried`);
  if (changed.length === 0) return 0;
  const stored = await sink.withConn(async (c) => {
    await c.client.mailboxOpen(path);
    try {
      // Messages without a record are compared with what the target holds now.
      const unknown = changed.filter((m) => !last.has(m.id)).map((m) => uidOf.get(m.id) as number);
      const now = new Map<number, string>();
      for (let i = 0; i < unknown.length; i += STORE_UIDS) {
        const set = toRanges(unknown.slice(i, i + STORE_UIDS));
        for await (const msg of c.client.fetch(set, { uid: true, flags: true }, { uid: true })) now.set(msg.uid, flagKey(msg.flags ?? []));
      }
      // One STORE per distinct change, over all the UIDs it applies to.
      const groups = new Map<string, { add: string[]; remove: string[]; uids: number[]; ids: string[] }>();
      for (const m of changed) {
        const uid = uidOf.get(m.id) as number;
        const before = last.get(m.id) ?? now.get(uid);
        if (before === undefined) continue; // gone from the target
        const want = new Set(flagsOfKey(flagKey(m.flags)));
        const had = new Set(flagsOfKey(before));
        const add = [...want].filter((x) => !had.has(x));
        const remove = [...had].filter((x) => !want.has(x));
        const key = `${add.join(' ')}\u0000${remove.join(' ')}`;
        const g = groups.get(key) ?? { add, remove, uids: [], ids: [] };
        g.uids.push(uid);
        g.ids.push(m.id);
        groups.set(key, g);
      }
      const done: string[] = [];
      let n = 0;
      for (const g of groups.values()) {
        // At most STORE_UIDS UIDs per command keeps its line short (Dovecot: 64 KiB).
        for (let i = 0; i < g.uids.length; i += STORE_UIDS) {
          const set = toRanges(g.uids.slice(i, i + STORE_UIDS));
          await storeChange(c.client, set, g.add, g.remove, false, path);
        }
        if (g.add.length + g.remove.length > 0) n += g.ids.length;
        done.push(...g.ids);
      }
      return { n, done };
    } finally {
      await deselect(c.client);
    }
  }, `cannot store flags in folder "${path}"`);
  const byId = new Map(changed.map((m) => [m.id, flagKey(m.flags)]));
  sink.checkpoint.update(folder.mailbox.path, (g) => {
    for (const id of stored.done) (g.flags ??= new Map()).set(id, byId.get(id) ?? '');
  });
  await sink.checkpoint.save();
  if (stored.n > 0) log.info(`${folder.mailbox.path}: flags updated on ${stored.n} messages on the target`);
  return stored.n;
}
