import type { Readable } from 'node:stream';
import { MailferryError } from '../../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../../domain/message.js';
import { dateHeader } from '../../formats/date-header.js';
import { fingerprintKey, headerBlock, toLf } from '../../formats/fingerprint.js';
import type { Logger } from '../../log/logger.js';
import { epochSeconds, keepFirstSeen, markFirstSeen, type Checkpoint, type LabelRecord } from '../../state/checkpoint.js';
import { flagKey } from '../../state/synced.js';
import { memoryLiteral, spoolLiteral, type Literal } from './literal.js';
import { removeGone } from './expunge.js';
import { syncFlags } from './flags.js';
import { storeLabels, syncLabels } from './target-labels.js';
import { deselect, targetKey, type TargetSink } from './target-common.js';
import { assertAlive } from './errors.js';
import { multiAppend } from './multi-append.js';
import { UidValidities, UNUSABLE } from './uid-validity.js';
import type { Fingerprint, Match, SinkFolder, Tx } from '../../sinks/sink.js';
import { bodyLimit } from '../body.js';
import { lfToCrlf } from '../../formats/encoder.js';

/**
 * One folder of the IMAP target (see ImapAppendSink in target.ts for the contract it keeps): what is recorded
 * of it, APPEND and MULTIAPPEND, the re-match after a crash or a cut-off APPEND; flag updates
 * (flags.ts) and removing what is gone from the source (expunge.ts) are beside it.
 */
/** Bounds of one MULTIAPPEND group. */
const GROUP_BYTES = 2 << 20;
const GROUP_MESSAGES = 500;

/** A \Noselect container: nothing to write, nothing to match. */
export class NoselectFolder implements SinkFolder {
  readonly known = new Set<string>();
  readonly needsRematch = false;
  constructor(readonly mailbox: MailboxInfo) {}
  async *fingerprints(): AsyncIterable<Fingerprint> {}
  async rebase(): Promise<void> {}
  async begin(): Promise<Tx> {
    throw new MailferryError('mailbox', `folder "${this.mailbox.path}" is \\Noselect; it holds no messages`);
  }
}

interface Pending {
  meta: MessageMeta;
  raw: Buffer;
}

/** What is sent of a message: its literal, and its first bytes (header block) for the date and the re-match. */
interface Outgoing {
  body: Literal;
  head: Buffer;
}

/** A message the target refused (not appended, not recorded). */
export interface Refusal {
  id: string;
  reason: string;
  /** Not sent: the target was full. */
  full?: boolean;
}

interface Appended {
  id: string;
  /** Gmail labels to set on the target (a labelled folder into Gmail), set before the commit. */
  labels?: readonly string[];
  /** Into Gmail: the source's X-GM-THRID, to compare with the thread Gmail gives it (target-labels.ts). */
  thread?: string;
  /** flagKey of the flags it was appended with. */
  flags: string;
  uid?: number;
  uidValidity?: bigint;
  dated: boolean;
}

export class ImapFolder implements SinkFolder {
  known = new Set<string>();
  needsRematch = false;
  /** Appended but not committed in this run (an aborted Tx): not appended again. */
  private readonly loose = new Map<string, Appended>();
  /** Target UIDs seen by the last fingerprints() pass, for rebase. */
  private seen: { uidValidity: bigint; uids: number[] } | undefined;
  /** An APPEND was cut off unanswered (dropped connection): it may have been stored or not. */
  private uncertain = false;
  /** After one: target messages nothing accounts for, by fingerprint key, to claim before appending. */
  private found: { uidValidity: bigint; uids: Map<string, number[]> } | undefined;
  /**
   * A re-match only because the target holds messages the state does not account for (added there
   * by someone else, or a run died before its commit): source id -> target UID of the records
   * still true (both UIDVALIDITYs unchanged, that UID still in the folder). They stay known
   * through the re-match (not matched again), so a message deleted on the source since is still
   * known as ours (--sync-deletions) and one the headers cannot match is not appended twice.
   */
  private kept: Map<string, number> | undefined;
  /** A target folder without a usable UIDVALIDITY gets this run's stand-in (uid-validity.ts). */
  private readonly validities: UidValidities;

  constructor(
    private readonly sink: TargetSink,
    readonly mailbox: MailboxInfo,
    private readonly path: string,
    private readonly log: Logger,
  ) {
    this.validities = new UidValidities((p) => log.warn(`${sink.name}: target folder "${p}" ${UNUSABLE}`));
  }

  /** The target folder's UIDVALIDITY as EXAMINE gave it, or this run's stand-in. */
  private validity(given: bigint | undefined): bigint {
    return this.validities.of(this.path, given);
  }

  private get checkpoint(): Checkpoint {
    return this.sink.checkpoint;
  }

  /** EXAMINE the target folder: its UIDVALIDITY and every UID in it. */
  private async examine(): Promise<{ uidValidity: bigint; uids: number[] }> {
    return this.sink.withConn(async (c) => {
      const box = await c.client.mailboxOpen(this.path, { readOnly: true });
      const uidValidity = this.validity(box.uidValidity as bigint | undefined);
      try {
        if (box.exists === 0) return { uidValidity, uids: [] };
        const found = await c.client.search({ all: true }, { uid: true });
        assertAlive(c.client, this.sink.where, { selected: true });
        // A refused SEARCH is not an empty folder: read as one, every message would be appended again.
        if (found === false || found === undefined) throw new MailferryError('mailbox', `folder "${this.path}" on ${this.sink.name}: the server refused UID SEARCH ALL`);
        return { uidValidity, uids: found };
      } finally {
        await deselect(c.client);
      }
    }, `cannot open folder "${this.path}"`);
  }

  async init(): Promise<void> {
    const target = await this.examine();
    const cp = this.checkpoint.folder(this.mailbox.path);
    const tcp = this.checkpoint.folder(targetKey(this.mailbox.path));
    const sourceOk = cp !== undefined && !cp.rematching && cp.uidValidity === this.mailbox.uidValidity?.toString();
    const targetOk =
      tcp !== undefined && tcp.uidValidity === target.uidValidity.toString() && target.uids.every((u) => tcp.ids.has(String(u)));
    if (sourceOk && targetOk) {
      this.known = new Set(cp.ids);
    } else if (target.uids.length > 0) {
      this.needsRematch = true;
      if (sourceOk && tcp?.uidValidity === target.uidValidity.toString()) {
        const there = new Set(target.uids);
        this.kept = new Map([...(cp.targetUids ?? [])].filter(([id, uid]) => cp.ids.has(id) && there.has(uid)));
        this.known = new Set(this.kept.keys());
      }
    } else {
      this.record(this.mailbox.uidValidity, [], target.uidValidity, []);
      await this.checkpoint.save();
    }
  }

  /** Replace both records of this folder (in memory). */
  private record(
    uidValidity: bigint | undefined,
    ids: string[],
    targetUidValidity: bigint,
    uids: number[],
    pairs: [string, number][] = [],
  ): void {
    this.checkpoint.update(this.mailbox.path, (f) => {
      if (uidValidity === undefined) delete f.uidValidity;
      else f.uidValidity = uidValidity.toString();
      delete f.rematching;
      f.ids = new Set(ids);
      keepFirstSeen(f, f.ids);
      f.flags = new Map();
      f.labels = new Map();
      f.targetUids = new Map(pairs);
    });
    this.checkpoint.update(targetKey(this.mailbox.path), (f) => {
      f.uidValidity = targetUidValidity.toString();
      f.ids = new Set(uids.map(String));
    });
  }

  async *fingerprints(): AsyncIterable<Fingerprint> {
    const out = await this.sink.withConn(async (c) => {
      const box = await c.client.mailboxOpen(this.path, { readOnly: true });
      const fps: Fingerprint[] = [];
      const uids: number[] = [];
      try {
        if (box.exists > 0) {
          const kept = new Set(this.kept?.values());
          for await (const m of c.client.fetch('1:*', { uid: true, size: true, headers: true })) {
            uids.push(m.uid);
            if (!kept.has(m.uid)) fps.push({ key: fingerprintKey(toLf(m.headers ?? Buffer.alloc(0)), m.size ?? 0), ref: String(m.uid) });
          }
        }
      } finally {
        await deselect(c.client);
      }
      this.seen = { uidValidity: this.validity(box.uidValidity as bigint | undefined), uids };
      return fps;
    }, `cannot open folder "${this.path}"`);
    yield* out;
  }

  /**
   * Record that the matched source ids (and the kept ones, with their flag records) are in the
   * target, and that every target message seen by fingerprints() is accounted for (one checkpoint
   * write, so a crash leaves the old state).
   */
  async rebase(uidValidity: bigint | undefined, matches: readonly Match[]): Promise<void> {
    const target = this.seen ?? (await this.examine());
    const kept = this.kept ?? new Map<string, number>();
    const keptUids = new Set(kept.values());
    const fresh = matches.filter((m) => !kept.has(m.id) && !keptUids.has(Number(m.ref)));
    const pairs = [...kept, ...fresh.map((m): [string, number] => [m.id, Number(m.ref)])];
    const ids = pairs.map(([id]) => id);
    const before = this.checkpoint.folder(this.mailbox.path);
    const flags = before?.flags ?? new Map<string, string>();
    const labels = before?.labels ?? new Map<string, LabelRecord>();
    this.record(uidValidity, ids, target.uidValidity, target.uids, pairs);
    // Only the kept records still describe their target message; a matched one without a record
    // is compared with the target's flags and labels by the next syncFlags.
    this.checkpoint.update(this.mailbox.path, (f) => {
      for (const id of kept.keys()) {
        const had = flags.get(id);
        if (had !== undefined) (f.flags ??= new Map()).set(id, had);
        const stored = labels.get(id);
        if (stored !== undefined) (f.labels ??= new Map()).set(id, stored);
      }
    });
    await this.checkpoint.save();
    this.known = new Set(ids);
    this.needsRematch = false;
    this.kept = undefined;
  }

  /** Flag changes on the source carried to the target (flags.ts); into Gmail, label changes too (target-labels.ts). */
  async syncFlags(metas: readonly MessageMeta[]): Promise<number> {
    const folder = { sink: this.sink, mailbox: this.mailbox, path: this.path, log: this.log };
    const n = await syncFlags(folder, metas);
    return this.mailbox.labelled === true && this.sink.gmail ? n + (await syncLabels(folder, metas)) : n;
  }

  /** `--sync-deletions`: see expunge.ts. */
  removeGone(present: ReadonlySet<string>): Promise<number> {
    return removeGone({ sink: this.sink, mailbox: this.mailbox, path: this.path, known: this.known, log: this.log }, present);
  }

  async begin(): Promise<Tx & { refused(): Refusal[] }> {
    const staged: Appended[] = [];
    const pending: Pending[] = [];
    let pendingBytes = 0;
    const refused: Refusal[] = [];
    const folder = this;
    const flush = async (): Promise<void> => {
      const group = pending.splice(0);
      pendingBytes = 0;
      await folder.appendGroup(group, staged, refused);
    };
    return {
      async write(meta: MessageMeta, body: Buffer | Readable): Promise<void> {
        const earlier = folder.loose.get(meta.id);
        if (earlier !== undefined) {
          if (!Buffer.isBuffer(body)) body.resume();
          staged.push(earlier);
          return;
        }
        const nul = (): void => {
          // Dovecot drops NUL bytes (even in a literal8): the copy is then not byte-exact.
          folder.log.warn(`${folder.mailbox.path} ${meta.id}: message holds NUL bytes; the target may drop them`);
        };
        const sendNow = async (out: Outgoing): Promise<void> => {
          const a = (await folder.claim(meta, out.head, out.body.size)) ?? (await folder.append(meta, out));
          folder.loose.set(meta.id, a);
          staged.push(a);
        };
        if (!Buffer.isBuffer(body)) {
          // Known too large from its size alone: drained, not spooled, not sent.
          try {
            folder.checkSize(meta.size ?? 0);
          } catch (e: unknown) {
            body.resume();
            throw e;
          }
          // A large message (streamed by the source) goes alone, from a spool file; the group
          // gathered so far goes first, so the target keeps the source's order.
          const spooled = await spoolLiteral(body, bodyLimit(meta), `${folder.mailbox.path} ${meta.id}`);
          try {
            folder.checkSize(spooled.size);
            if (spooled.nul) nul();
            if (folder.sink.multi) await flush();
            await sendNow({ body: spooled, head: spooled.head });
          } finally {
            await spooled.remove();
          }
          return;
        }
        const raw = lfToCrlf(body);
        folder.checkSize(raw.length);
        if (raw.includes(0)) nul();
        if (!folder.sink.multi) return sendNow({ body: memoryLiteral(raw), head: raw });
        pending.push({ meta, raw });
        pendingBytes += raw.length;
        if (pendingBytes >= GROUP_BYTES || pending.length >= GROUP_MESSAGES) await flush();
      },
      async commit(): Promise<void> {
        try {
          await flush();
        } catch (e: unknown) {
          // A full target: keep what went in before it.
          if (e instanceof MailferryError && e.kind === 'quota') await folder.commit(staged.splice(0));
          throw e;
        }
        await folder.commit(staged.splice(0));
      },
      async abort(): Promise<void> {
        if (staged.length > 0) {
          folder.log.debug(`${folder.mailbox.path}: ${staged.length} appended messages not committed; they stay on the target`);
        }
        staged.length = 0;
        pending.length = 0;
      },
      refused: () => refused.splice(0),
    };
  }

  /**
   * Append a group: one MULTIAPPEND, or, when there is one message or the server refuses the
   * group, one APPEND each (a refused message goes to `refused`, a full target throws `quota`).
   * Every appended message goes to `staged` (and `loose`) as soon as the server accepted it.
   */
  private async appendGroup(all: readonly Pending[], staged: Appended[], refused: Refusal[]): Promise<void> {
    const group: Pending[] = [];
    for (const p of all) {
      const a = await this.claim(p.meta, p.raw, p.raw.length);
      if (a === undefined) group.push(p);
      else {
        this.loose.set(a.id, a);
        staged.push(a);
      }
    }
    if (group.length > 1) {
      try {
        const appended = await this.appendMany(group);
        for (const a of appended) this.loose.set(a.id, a);
        staged.push(...appended);
        return;
      } catch (e: unknown) {
        if (!(e instanceof MailferryError && (e.kind === 'message' || e.kind === 'quota'))) throw e;
        this.log.debug(`${this.mailbox.path}: MULTIAPPEND of ${group.length} refused (${e.message}); one at a time`);
      }
    }
    for (const [i, { meta, raw }] of group.entries()) {
      try {
        const a = await this.append(meta, { body: memoryLiteral(raw), head: raw });
        this.loose.set(meta.id, a);
        staged.push(a);
      } catch (e: unknown) {
        if (e instanceof MailferryError && e.kind === 'quota') {
          for (const p of group.slice(i)) refused.push({ id: p.meta.id, reason: e.message, full: true });
        }
        if (!(e instanceof MailferryError && e.kind === 'message')) throw e;
        this.log.warn(`${this.mailbox.path} ${meta.id}: ${e.message}; message skipped`);
        refused.push({ id: meta.id, reason: e.message });
      }
    }
  }

  /**
   * After an APPEND was cut off unanswered, the target may hold its messages or not; appending
   * them again on the retry could store them twice. So the target folder is matched first (header
   * hash and size, as after a crash), and a message found there among the messages nothing
   * accounts for is taken as appended (with that UID) instead of being sent again.
   */
  private async claim(meta: MessageMeta, head: Buffer, size: number): Promise<Appended | undefined> {
    if (this.uncertain) {
      this.uncertain = false;
      const accounted = new Set(this.checkpoint.folder(targetKey(this.mailbox.path))?.ids ?? []);
      for (const a of this.loose.values()) if (a.uid !== undefined) accounted.add(String(a.uid));
      const uids = new Map<string, number[]>();
      for await (const fp of this.fingerprints()) {
        if (!accounted.has(fp.ref)) uids.set(fp.key, [...(uids.get(fp.key) ?? []), Number(fp.ref)]);
      }
      this.found = this.seen === undefined ? undefined : { uidValidity: this.seen.uidValidity, uids };
      this.log.warn(`${this.mailbox.path}: an APPEND was cut off unanswered; ${[...uids.values()].flat().length} target messages not yet accounted for are matched before appending again`);
    }
    const found = this.found;
    const uid = found?.uids.get(fingerprintKey(toLf(headerBlock(head)), size))?.shift();
    if (found === undefined || uid === undefined) return undefined;
    this.log.info(`${this.mailbox.path} ${meta.id}: already on the target (an APPEND cut off earlier went through); not appended again`);
    const flags = [...meta.flags].filter((f) => f.toLowerCase() !== '\\recent');
    return { id: meta.id, flags: flagKey(flags), dated: meta.internalDate !== undefined, uid, uidValidity: found.uidValidity, ...this.labelsOf(meta) };
  }

  /** A dropped connection during an APPEND leaves its outcome unknown. */
  private cutOff(e: unknown): never {
    if (e instanceof MailferryError && e.retryable) this.uncertain = true;
    throw e;
  }

  /** Throws `message` when `size` wire bytes are more than the target takes (TargetSink.appendLimit). */
  checkSize(size: number): void {
    const limit = this.sink.appendLimit;
    if (limit === undefined || size <= limit.bytes) return;
    const who = limit.by === 'server' ? 'the target announces (APPENDLIMIT)' : "the target's provider takes (its profile's limits.maxAppendBytes)";
    throw new MailferryError('message', `${size} bytes, larger than the ${limit.bytes} bytes ${who}; not sent`);
  }

  private async appendMany(group: readonly Pending[]): Promise<Appended[]> {
    const items = group.map(({ meta, raw }) => ({
      body: memoryLiteral(raw),
      flags: [...meta.flags].filter((f) => f.toLowerCase() !== '\\recent'),
      ...dateOf(meta, raw),
    }));
    const res = await this.sink
      .withConn(async (c) => {
        await deselect(c.client);
        return multiAppend(c.client, this.path, items);
      })
      .catch((e: unknown) => this.cutOff(appendError(e, this.mailbox.path, `(${group.length} messages)`)));
    return group.map(({ meta }, i) => {
      const uid = res.uids?.[i];
      return {
        id: meta.id,
        flags: flagKey(items[i]?.flags ?? []),
        dated: meta.internalDate !== undefined,
        ...this.labelsOf(meta),
        ...(uid === undefined ? {} : { uid }),
        ...(res.uidValidity === undefined ? {} : { uidValidity: res.uidValidity }),
      };
    });
  }

  private async append(meta: MessageMeta, out: Outgoing): Promise<Appended> {
    const flags = [...meta.flags].filter((f) => f.toLowerCase() !== '\\recent');
    const res = await this.sink
      .withConn(async (c) => {
        // imapflow keeps only flags the *selected* mailbox's PERMANENTFLAGS allow: select nothing.
        await deselect(c.client);
        return multiAppend(c.client, this.path, [{ body: out.body, flags, ...dateOf(meta, out.head) }]);
      })
      .catch((e: unknown) => this.cutOff(appendError(e, this.mailbox.path, meta.id)));
    const uid = res.uids?.[0];
    return {
      id: meta.id,
      flags: flagKey(flags),
      dated: meta.internalDate !== undefined,
      ...this.labelsOf(meta),
      ...(uid === undefined ? {} : { uid }),
      ...(res.uidValidity === undefined ? {} : { uidValidity: res.uidValidity }),
    };
  }

  /** The labels a message is to get on a Gmail target (a labelled folder only), and its source thread. */
  private labelsOf(meta: MessageMeta): { labels?: readonly string[]; thread?: string } {
    const thread = this.sink.gmail && meta.threadId !== undefined ? { thread: meta.threadId } : {};
    return this.mailbox.labelled === true && this.sink.gmail && meta.labels !== undefined ? { labels: meta.labels, ...thread } : thread;
  }

  private async commit(done: Appended[]): Promise<void> {
    if (done.length === 0) return;
    await storeLabels(this.sink, this.path, done);
    const tKey = targetKey(this.mailbox.path);
    const tcp = this.checkpoint.folder(tKey);
    const withUid = done.every((a) => a.uid !== undefined && a.uidValidity?.toString() === tcp?.uidValidity);
    const target = withUid ? undefined : await this.examine();
    this.checkpoint.update(tKey, (f) => {
      if (target !== undefined) {
        // No APPENDUID (or the target was recreated): account for everything the folder holds.
        f.uidValidity = target.uidValidity.toString();
        f.ids = new Set(target.uids.map(String));
      } else {
        for (const a of done) f.ids.add(String(a.uid));
      }
    });
    const ids = done.map((a) => a.id);
    this.checkpoint.update(this.mailbox.path, (f) => {
      for (const id of ids) f.ids.add(id);
      for (const a of done) {
        if (a.labels !== undefined) (f.labels ??= new Map()).set(a.id, { labels: [...a.labels] });
        (f.flags ??= new Map()).set(a.id, a.flags);
        if (withUid && a.uid !== undefined) (f.targetUids ??= new Map()).set(a.id, a.uid);
      }
      markFirstSeen(
        f,
        done.filter((a) => !a.dated).map((a) => a.id),
        epochSeconds(),
      );
    });
    await this.checkpoint.save();
    for (const id of ids) {
      this.known.add(id);
      this.loose.delete(id);
    }
  }
}

/**
 * A NO to APPEND concerns this message (too big: Dovecot says [LIMIT], RFC 7889 [TOOBIG]; refused
 * content), except a full account ([OVERQUOTA], RFC 5530), which stops the run (kind `quota`).
 */
function appendError(e: unknown, path: string, id: string): MailferryError {
  const cause = e instanceof MailferryError ? e.cause : e;
  const code = typeof cause === 'object' && cause !== null ? (cause as { serverResponseCode?: unknown }).serverResponseCode : undefined;
  const text = e instanceof Error ? e.message : String(e);
  if (code === 'OVERQUOTA') return new MailferryError('quota', `target is over quota (at ${path} ${id}): ${text}`, { cause });
  if (code === 'APPENDLIMIT' || code === 'TOOBIG' || code === 'LIMIT' || (e instanceof MailferryError && e.kind === 'mailbox')) {
    return new MailferryError('message', `${path} ${id}: target refused the message: ${text}`, { cause });
  }
  return e instanceof MailferryError ? e : mapImapErrorFallback(e);
}

function mapImapErrorFallback(e: unknown): MailferryError {
  return new MailferryError('protocol', e instanceof Error ? e.message : String(e), { cause: e });
}

/**
 * The INTERNALDATE to append with: the source's, else (POP3 has none) the Date: header's, so a
 * migrated mailbox does not look received today; else none (the server takes the time of APPEND).
 */
function appendDate(meta: MessageMeta, raw: Buffer): Date | undefined {
  return meta.internalDate ?? dateHeader(headerBlock(raw));
}

function dateOf(meta: MessageMeta, raw: Buffer): { date?: Date } {
  const date = appendDate(meta, raw);
  return date === undefined ? {} : { date };
}
