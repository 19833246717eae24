import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import { MailferryError } from '../domain/errors.js';
import { RETRY, withRetry } from '../domain/retry.js';
import { fingerprintKey, headerBlock, toLf } from '../formats/fingerprint.js';
import type { Logger } from '../log/logger.js';
import { folderFilter, selectMailboxes } from '../pipeline/folders.js';
import type { Source } from '../sources/source.js';
import { flagKey } from '../state/synced.js';
import { compareDigests, digestBody, type Digests } from './digest.js';
import { counts, type Difference, type FolderCounts, type Ignorable, type VerifyOutcome } from './difference.js';
import { headerField } from './headers.js';

/**
 * The comparison behind `mailferry verify`, written once against the Source contract: the copy is
 * read as a Source too (an archive by the Maildir or mbox source, an IMAP target by the IMAP
 * source, which opens folders with EXAMINE and reads with BODY.PEEK), so every pair of source and
 * copy is compared the same way. It only reads.
 *
 * Per source folder (after --include/--exclude; \Noselect containers hold nothing to compare):
 * 1. Its folder in the copy is `place(mailbox)` (the copy command's own mapping); a copy without
 *    it is one `folder-missing` difference when the source folder holds messages.
 * 2. Both sides are listed (the source through the copy's message filter) and their header blocks
 *    read (`headers()`). Messages are paired first by the id the copy recorded (HeaderSample
 *    `origin`: a Maildir's U= under the uidValidity its state records, an mbox's From_ offset
 *    under its state's record of which source id it holds; or `recorded()`: an IMAP target's
 *    APPENDUID answers, target UIDVALIDITY + UID per source id, from the state on this machine),
 *    when that is the source folder's uidValidity now, if their content keys or Message-IDs agree too (an id alone could be another
 *    account's); then by content key (sha256 of the header block in LF form, and the size on the
 *    wire: formats/fingerprint.ts, what a re-match after a UIDVALIDITY change uses; POP3's other
 *    size counts too), copies of the same key as a multiset; what is left by Message-ID. A pair
 *    whose keys differ is `altered` (headers or size differ). The rest is `missing` on one side,
 *    `extra` on the other. Recorded ids tell apart messages whose headers and sizes are the same
 *    (their bodies differ); content pairing works for every copy alike, state or not.
 * 3. Each pair: flags (\Recent aside) and internal dates (to the second) compared, unless the
 *    source has none (POP3: one `known` note per folder); in a labelled folder (Gmail mode on
 *    both sides: a Gmail-mode archive of a Gmail account) the labels too, as a `flags` difference.
 *    Label folders (MailboxInfo.label) are not read on either side: their messages are the
 *    labelled folder's.
 * 4. `full` depth: the bodies of every pair, read from both sides in batches bounded by bytes
 *    (bodies over the stream threshold come as streams: memory bounded as for a backup) and
 *    digested (digest.ts); `quick` stops after 3, so it sees a changed size or header but not a
 *    body changed in place with its size kept.
 * A folder of the copy holding messages that no source folder maps to is `folder-extra`. A lost
 * connection is retried (RETRY, domain/retry.ts) folder by folder.
 */
export interface VerifyOptions {
  depth: 'quick' | 'full';
  include: readonly string[];
  exclude: readonly string[];
  /** The copy's folder for a source folder, by the copy command's rules. */
  place(mailbox: MailboxInfo): Promise<string>;
  /** False for POP3: no flags and no dates to compare. */
  sourceHasFlags: boolean;
  ignore: ReadonlySet<Ignorable>;
  batchBytes: number;
  batchMessages: number;
  signal: AbortSignal;
  log: Logger;
  onDifference?: (d: Difference) => void;
  /**
   * The ids a copy recorded outside its messages (an IMAP target's APPENDUID answers, in the state
   * file on this machine): for a source folder and its folder in the copy, both as selected now
   * (with their uidValidity), the copy's ids -> source ids. Undefined when nothing is recorded or
   * the record is of another UIDVALIDITY of the copy's folder. A copy whose `headers()` gives
   * `origin` itself (an archive reads its own state) needs none.
   */
  recorded?: (source: MailboxInfo, copy: MailboxInfo) => Promise<Recorded | undefined>;
  /**
   * Progress, as the pipeline reports a copy's: `planned` once a folder's source side is listed
   * (its messages and bytes), `batch` as they are compared (each digest batch at full depth, the
   * whole folder at once after the metadata at quick depth).
   */
  onProgress?: (e: VerifyProgress) => void;
}

export interface VerifyProgress {
  type: 'planned' | 'batch';
  mailbox: string;
  messages: number;
  bytes: number;
}

/** The folder count each kind of difference adds to. */
const COUNTED: Partial<Record<Difference['kind'], 'missing' | 'extra' | 'altered' | 'flags' | 'dates' | 'known'>> = {
  missing: 'missing',
  extra: 'extra',
  altered: 'altered',
  flags: 'flags',
  date: 'dates',
  known: 'known',
};

interface Item {
  meta: MessageMeta;
  key?: string;
  alt?: string;
  /** The source id the copy recorded for this message, valid under `uidValidity` (HeaderSample.origin). */
  origin?: { uidValidity: bigint; id: string };
  messageId?: string;
  subject?: string;
}

/** A copy's record of which source message each of its messages is: copy id -> origin (HeaderSample.origin). */
export type Recorded = ReadonlyMap<string, { readonly uidValidity: bigint; readonly id: string }>;

export async function verifyCopy(source: Source, copy: Source, destination: string, o: VerifyOptions): Promise<VerifyOutcome> {
  const outcome: VerifyOutcome = { destination, depth: o.depth, folders: [], foldersMissing: 0, foldersExtra: 0, differences: 0 };
  /** Report `d` unless ignored, and count it (in `fc`, the folder's counts, when given). */
  const report = (d: Difference, fc?: FolderCounts): void => {
    if (d.kind === 'flags' && o.ignore.has('flags')) return;
    if (d.kind === 'date' && o.ignore.has('dates')) return;
    if ((d.kind === 'extra' || d.kind === 'folder-extra') && o.ignore.has('extra')) return;
    if (counts(d)) outcome.differences++;
    const field = COUNTED[d.kind];
    if (fc !== undefined && field !== undefined) fc[field]++;
    o.onDifference?.(d);
  };
  // A lost connection (retryable) is retried with the run's policy, a folder at a time: its
  // differences are reported only once the folder was compared whole, so a retry repeats none.
  const retry = <T>(what: string, fn: () => Promise<T>): Promise<T> => withRetry(what, fn, { attempts: RETRY.attempts, baseMs: RETRY.baseMs, log: o.log, signal: o.signal });
  const all = await retry('verify: listing the source', () => source.mailboxes());
  const copyBoxes = new Map((await retry(`verify: listing ${destination}`, () => copy.mailboxes())).map((m) => [m.path, m]));
  const keep = folderFilter(o.include, o.exclude);
  const placed = new Set<string>();
  for (const m of all) placed.add(await o.place(m));
  for (const mailbox of selectMailboxes(all, keep)) {
    // A Gmail label folder (Gmail mode) is not read: its messages are the labelled folder's, whose labels are compared.
    if (mailbox.noSelect === true || mailbox.label !== undefined) continue;
    if (o.signal.aborted) throw new MailferryError('interrupted', 'interrupted');
    const target = await o.place(mailbox);
    const there = copyBoxes.get(target);
    const fc: FolderCounts = { folder: mailbox.path, target, source: 0, copy: 0, missing: 0, extra: 0, altered: 0, flags: 0, dates: 0, known: 0 };
    outcome.folders.push(fc);
    const named = (d: Found): Difference => ({ destination, folder: mailbox.path, ...(target === mailbox.path ? {} : { target }), ...d });
    const found = await retry(`verify ${mailbox.path}`, async () => {
      const out: Found[] = [];
      const { selected, list: src } = await items(source, mailbox);
      fc.source = src.length;
      if (there === undefined || there.noSelect === true) {
        if (src.length > 0) out.push({ kind: 'folder-missing', detail: `folder missing in the copy (${src.length} messages)` });
        return out;
      }
      const { selected: copyBox, list: dst } = await items(copy, there);
      fc.copy = dst.length;
      const recorded = dst.length === 0 ? undefined : await o.recorded?.(selected, copyBox);
      for (const d of dst) {
        const origin = d.origin === undefined ? recorded?.get(d.meta.id) : undefined;
        if (origin !== undefined) d.origin = origin;
      }
      const bytes = src.reduce((n, i) => n + (i.meta.size ?? 0), 0);
      o.onProgress?.({ type: 'planned', mailbox: mailbox.path, messages: src.length, bytes });
      // Full depth reports its digest batches; the rest (quick depth: all) once the folder is done.
      const done = { messages: 0, bytes: 0 };
      const counted = (e: VerifyProgress): void => {
        done.messages += e.messages;
        done.bytes += e.bytes;
        o.onProgress?.(e);
      };
      await compareFolder(source, copy, src, dst, { ...o, onProgress: counted }, (d) => out.push(d));
      o.onProgress?.({ type: 'batch', mailbox: mailbox.path, messages: src.length - done.messages, bytes: Math.max(0, bytes - done.bytes) });
      return out;
    });
    for (const d of found) {
      if (d.kind === 'folder-missing') outcome.foldersMissing++;
      report(named(d), fc);
    }
  }
  for (const m of copyBoxes.values()) {
    if (m.noSelect === true || m.label !== undefined || placed.has(m.path) || !keep(m)) continue;
    const { count } = await retry(`verify ${m.path}`, () => copy.select(m));
    if (count === 0) continue;
    outcome.foldersExtra++;
    report({ kind: 'folder-extra', destination, folder: m.path, detail: `folder in the copy only (${count} messages)` });
  }
  return outcome;
}

/** A folder as selected (its uidValidity now), and its messages with their content keys, Message-ID and Subject. */
async function items(s: Source, mailbox: MailboxInfo): Promise<{ selected: MailboxInfo; list: Item[] }> {
  const selected = (await s.select(mailbox)).mailbox;
  const byId = new Map<string, Item>();
  for await (const meta of s.list(selected, () => true)) byId.set(meta.id, { meta });
  if (byId.size === 0) return { selected, list: [] };
  for await (const h of s.headers(selected)) {
    const item = byId.get(h.id);
    if (item === undefined) continue;
    if (h.origin !== undefined) item.origin = h.origin;
    const lf = toLf(headerBlock(h.header));
    item.key = fingerprintKey(lf, h.size);
    if (h.altSize !== undefined) item.alt = fingerprintKey(lf, h.altSize);
    const messageId = headerField(lf, 'message-id');
    const subject = headerField(lf, 'subject');
    if (messageId !== undefined) item.messageId = messageId;
    if (subject !== undefined) item.subject = subject;
  }
  return { selected, list: [...byId.values()] };
}

type Found = Omit<Difference, 'destination' | 'folder' | 'target'>;
type Report = (d: Found) => void;

function about(item: Item): Pick<Difference, 'messageId' | 'subject'> {
  return { ...(item.messageId === undefined ? {} : { messageId: item.messageId }), ...(item.subject === undefined ? {} : { subject: item.subject }) };
}

async function compareFolder(source: Source, copy: Source, src: Item[], dst: Item[], o: VerifyOptions, report: Report): Promise<void> {
  const pairs: [Item, Item][] = [];
  const altered = new Set<Item>();
  const taken = new Set<Item>();
  const alteredPair = (s: Item, d: Item): void => {
    pairs.push([s, d]);
    altered.add(s);
    const size = s.meta.size === d.meta.size ? 'headers differ' : `headers or size differ (size ${s.meta.size ?? '?'} in the source, ${d.meta.size ?? '?'} in the copy)`;
    report({ kind: 'altered', id: s.meta.id, copyId: d.meta.id, ...about(s), detail: size });
  };
  // Pair by the ids the copy recorded, where they are of the source folder's uidValidity now.
  const epoch = src[0]?.meta.mailbox.uidValidity;
  const recorded = new Map<string, Item>();
  for (const d of dst) if (epoch !== undefined && d.origin?.uidValidity === epoch && !recorded.has(d.origin.id)) recorded.set(d.origin.id, d);
  const left: Item[] = [];
  for (const s of src) {
    const d = recorded.get(s.meta.id);
    const sameKey = d !== undefined && s.key !== undefined && (d.key === s.key || d.alt === s.key || (s.alt !== undefined && (d.key === s.alt || d.alt === s.alt)));
    if (d === undefined || (!sameKey && (s.messageId === undefined || s.messageId !== d.messageId))) {
      left.push(s);
      continue;
    }
    taken.add(d);
    if (sameKey) pairs.push([s, d]);
    else alteredPair(s, d);
  }
  // Then by content key (a multiset), then what is left by Message-ID.
  // A copy's message is found by its key and by its other key (an mbox without our state: the
  // size without a final LF that may be framing), once.
  const free = new Map<string, Item[]>();
  const add = (k: string | undefined, d: Item): void => {
    if (k !== undefined) free.set(k, [...(free.get(k) ?? []), d]);
  };
  for (const d of dst) {
    if (taken.has(d)) continue;
    add(d.key, d);
    if (d.alt !== d.key) add(d.alt, d);
  }
  // Among copies of one content, the one with the same flags and date first, so that identical
  // messages are not cross-paired into flag differences.
  const take = (s: Item, key: string | undefined): Item | undefined => {
    if (key === undefined) return undefined;
    const list = free.get(key)?.filter((d) => !taken.has(d));
    if (list === undefined || list.length === 0) return undefined;
    const d = list.find((x) => flagKey(x.meta.flags) === flagKey(s.meta.flags) && sameSecond(x.meta.internalDate, s.meta.internalDate)) ?? list[0];
    if (d !== undefined) taken.add(d);
    return d;
  };
  const unpaired: Item[] = [];
  for (const s of left) {
    const d = take(s, s.key) ?? take(s, s.alt);
    if (d === undefined) unpaired.push(s);
    else pairs.push([s, d]);
  }
  const rest = new Set(dst.filter((d) => d.key !== undefined && !taken.has(d)));
  const byMessageId = new Map<string, Item>();
  for (const d of rest) if (d.messageId !== undefined && !byMessageId.has(d.messageId)) byMessageId.set(d.messageId, d);
  for (const s of unpaired) {
    const d = s.messageId === undefined ? undefined : byMessageId.get(s.messageId);
    if (d === undefined || !rest.has(d)) {
      report({ kind: 'missing', id: s.meta.id, ...about(s), detail: 'not in the copy' });
      continue;
    }
    rest.delete(d);
    alteredPair(s, d);
  }
  for (const d of rest) {
    report({ kind: 'extra', copyId: d.meta.id, ...about(d), detail: 'in the copy only' });
  }
  if (!o.sourceHasFlags && pairs.length > 0) {
    report({ kind: 'known', detail: 'the source (POP3) has no flags or dates: not compared' });
  }
  for (const [s, d] of o.sourceHasFlags ? pairs : []) {
    const sf = flagKey(s.meta.flags);
    const df = flagKey(d.meta.flags);
    if (sf !== df) {
      report({ kind: 'flags', id: s.meta.id, copyId: d.meta.id, ...about(s), detail: `flags: source "${sf}", copy "${df}"` });
    }
    // Gmail mode on both sides (a labelled folder): the labels the copy keeps, as a flag difference.
    if (s.meta.labels !== undefined && d.meta.labels !== undefined) {
      const sl = [...s.meta.labels].sort().join(' ');
      const dl = [...d.meta.labels].sort().join(' ');
      if (sl !== dl) report({ kind: 'flags', id: s.meta.id, copyId: d.meta.id, ...about(s), detail: `labels: source "${sl}", copy "${dl}"` });
    }
    const sd = s.meta.internalDate;
    const dd = d.meta.internalDate;
    if (sd !== undefined && dd !== undefined && !sameSecond(sd, dd)) {
      report({ kind: 'date', id: s.meta.id, copyId: d.meta.id, ...about(s), detail: `date: source ${sd.toISOString()}, copy ${dd.toISOString()}` });
    }
  }
  if (o.depth === 'quick') return;
  const todo = pairs.filter(([s]) => !altered.has(s));
  // Progress counts the copy side's batches (read second): a folder is done when they are.
  const srcDigests = await digests(source, todo.map(([s]) => s.meta), o, 'source');
  const dstDigests = await digests(copy, todo.map(([, d]) => d.meta), o, 'copy');
  for (const [s, d] of todo) {
    const a = srcDigests.get(s.meta.id);
    const b = dstDigests.get(d.meta.id);
    if (a === undefined || b === undefined) {
      report({ kind: 'missing', id: s.meta.id, copyId: d.meta.id, ...about(s), detail: `could not be read from the ${a === undefined ? 'source' : 'copy'} (gone meanwhile)` });
      continue;
    }
    const how = compareDigests(a, b);
    if (how === 'same') continue;
    if (how === 'altered') {
      report({ kind: 'altered', id: s.meta.id, copyId: d.meta.id, ...about(s), detail: `content differs (${a.bytes} bytes in the source, ${b.bytes} in the copy)` });
      continue;
    }
    const why = how === 'nul' ? 'NUL bytes served as 0x80 (Dovecot)' : 'one final newline more on one side (mbox framing, POP3)';
    report({ kind: 'known', id: s.meta.id, copyId: d.meta.id, ...about(s), detail: why });
  }
}

/** Internal dates compare to the second (IMAP's INTERNALDATE has no finer grain); no date matches any. */
function sameSecond(a: Date | undefined, b: Date | undefined): boolean {
  return a === undefined || b === undefined || Math.floor(a.getTime() / 1000) === Math.floor(b.getTime() / 1000);
}

/** Digests of `metas` (one folder), fetched in batches bounded by bytes and by count. */
async function digests(s: Source, metas: readonly MessageMeta[], o: VerifyOptions, side: 'source' | 'copy'): Promise<Map<string, Digests>> {
  const out = new Map<string, Digests>();
  let batch: MessageMeta[] = [];
  let bytes = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    for await (const f of s.fetch(batch, o.signal)) out.set(f.meta.id, await digestBody(f.body));
    if (side === 'copy') o.onProgress?.({ type: 'batch', mailbox: batch[0]?.mailbox.path ?? '', messages: batch.length, bytes });
    batch = [];
    bytes = 0;
  };
  for (const m of metas) {
    if (batch.length > 0 && (bytes + (m.size ?? 0) > o.batchBytes || batch.length >= o.batchMessages)) await flush();
    batch.push(m);
    bytes += m.size ?? 0;
  }
  await flush();
  return out;
}
