import type { MessageRangeOptions } from 'imapflow';
import { MailferryError } from '../../domain/errors.js';
import type { MailboxInfo } from '../../domain/message.js';
import type { Logger } from '../../log/logger.js';
import { assertAlive } from './errors.js';
import { toRanges } from '../../state/ids.js';
import { deselect, STORE_UIDS, targetKey, type TargetSink } from './target-common.js';

/**
 * `--sync-deletions` on an IMAP target: the `removeGone` of the Sink contract for ImapFolder.
 *
 * A message is removed only when mailferry put it there itself: its source id is in `known` and the
 * checkpoint holds its target UID (APPENDUID or the header re-match), valid for the target
 * folder's current UIDVALIDITY. Removal is `UID STORE <uids> +FLAGS.SILENT (\Deleted)` then
 * `UID EXPUNGE <uids>` (RFC 4315) on exactly those UIDs, STORE_UIDS at a time; a plain EXPUNGE
 * would also remove every other message flagged \Deleted (the source's \Deleted ones the target
 * keeps), so a target without UIDPLUS gets no deletion at all, and one warning. The UIDs still in
 * the folder are looked up first (UID SEARCH UID), so a run after a crash between the EXPUNGE and
 * the state's save removes nothing again, counts nothing, and only cleans the state. The state then
 * drops the removed ids (ids, target UID, flags, first-seen time) and the target UIDs, and is saved.
 */
export interface GoneFolder {
  readonly sink: TargetSink;
  /** The source mailbox (the checkpoint's key). */
  readonly mailbox: MailboxInfo;
  /** The target folder. */
  readonly path: string;
  /** The folder's known source ids; removed ids are deleted from it. */
  readonly known: Set<string>;
  readonly log: Logger;
}

const DELETE_OPTIONS: MessageRangeOptions & { silent: boolean } = { uid: true, silent: true };

/** Sinks already warned that their target has no UIDPLUS (one warning per run). */
const warned = new WeakSet<TargetSink>();

export async function removeGone(folder: GoneFolder, present: ReadonlySet<string>): Promise<number> {
  const { sink, log, path } = folder;
  const source = folder.mailbox.path;
  const cp = sink.checkpoint;
  const uidOf = cp.folder(source)?.targetUids ?? new Map<string, number>();
  const gone = [...folder.known].filter((id) => !present.has(id));
  const mapped = gone.filter((id) => uidOf.has(id));
  if (gone.length > mapped.length) {
    log.info(`${source}: ${gone.length - mapped.length} messages deleted on the source have no known target UID; not removed from the target`);
  }
  if (mapped.length === 0) return 0;
  const uidValidity = cp.folder(targetKey(source))?.uidValidity;
  const uids = mapped.map((id) => uidOf.get(id) as number).sort((a, b) => a - b);
  const outcome = await sink.withConn(async (c): Promise<{ removed: number } | { skip: string }> => {
    if (!c.client.capabilities.has('UIDPLUS')) return { skip: 'uidplus' };
    const box = await c.client.mailboxOpen(path);
    try {
      if (box.uidValidity.toString() !== uidValidity) return { skip: `target folder "${path}" was recreated (UIDVALIDITY changed)` };
      let removed = 0;
      for (let i = 0; i < uids.length; i += STORE_UIDS) {
        const there = await c.client.search({ uid: toRanges(uids.slice(i, i + STORE_UIDS)) }, { uid: true });
        assertAlive(c.client, sink.where, { selected: true });
        if (there === false || there === undefined) throw new MailferryError('mailbox', `the target refused UID SEARCH in folder "${path}"`);
        if (there.length === 0) continue;
        // imapflow 2.10.2 (commands/expunge.js): UID STORE with these options (`silent`: +FLAGS.SILENT),
        // then UID EXPUNGE of the same set when UIDPLUS is on (checked above); false after a NO.
        if ((await c.client.messageDelete(toRanges(there), DELETE_OPTIONS)) !== true) {
          assertAlive(c.client, sink.where, { selected: true });
          throw new MailferryError('mailbox', `the target refused to remove ${there.length} messages (UID STORE \\Deleted / UID EXPUNGE)`);
        }
        removed += there.length;
      }
      return { removed };
    } finally {
      await deselect(c.client);
    }
  }, `cannot remove messages from folder "${path}"`);
  if ('skip' in outcome) {
    if (outcome.skip !== 'uidplus') log.warn(`${source}: ${outcome.skip}; ${mapped.length} messages deleted on the source not removed`);
    else if (!warned.has(sink)) {
      warned.add(sink);
      log.warn(`${sink.name} does not offer UIDPLUS (RFC 4315): --sync-deletions removes nothing (a plain EXPUNGE could remove other messages)`);
    }
    return 0;
  }
  const drop = new Set(mapped);
  cp.update(source, (f) => {
    for (const id of drop) {
      f.ids.delete(id);
      f.targetUids?.delete(id);
      f.flags?.delete(id);
      f.firstSeen?.delete(id);
    }
  });
  cp.update(targetKey(source), (f) => {
    for (const uid of uids) f.ids.delete(String(uid));
  });
  await cp.save();
  for (const id of drop) folder.known.delete(id);
  if (outcome.removed > 0) log.info(`${source}: ${outcome.removed} messages removed from the target (deleted on the source)`);
  return outcome.removed;
}
