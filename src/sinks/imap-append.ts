import type { Credentials } from '../auth/credentials.js';
import type { Readable } from 'node:stream';
import { MailferryError } from '../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import type { RemoteEndpoint } from '../endpoints/url.js';
import { fingerprintKey, toLf } from '../formats/fingerprint.js';
import type { Logger } from '../log/logger.js';
import { ImapPool, type Conn } from '../sources/imap-pool.js';
import { epochSeconds, keepFirstSeen, markFirstSeen, type Checkpoint } from '../state/checkpoint.js';
import { toRanges } from '../state/ids.js';
import { flagKey, flagsOfKey } from '../state/synced.js';
import { mapFolder, sourceRole, targetRoles, type MapRule, type Mapped, type Role } from './folder-map.js';
import type { Fingerprint, Match, Sink, SinkFolder, Tx } from './sink.js';
import { collect } from './write-body.js';

/**
 * IMAP target (migrate, restore): each message is APPENDed to the target server with its flags
 * (without \Recent, which only the server sets; keywords kept) and its INTERNALDATE.
 *
 * - `open(mailbox)` maps the source path to a target path (folder-map.ts: `--map` rules, then the
 *   special-use role found in the target's LIST, then the source name with the target's hierarchy
 *   delimiter; a component that contains that delimiter cannot be represented: error `mailbox`;
 *   two source folders never share a target folder), CREATEs and SUBSCRIBEs
 *   the folder when missing; a \Noselect source mailbox creates nothing itself: CREATE of a child
 *   makes its parents exist (RFC 3501 6.3.3), and an empty container has no meaning on the target.
 * - The checkpoint (the caller decides where it lives) keeps, under the source path, the source
 *   UIDVALIDITY and the source ids appended (as the other sinks do), and under `targetKey(path)`
 *   the target folder's UIDVALIDITY and the target UIDs we know of (from APPENDUID, RFC 4315).
 *   `known` is the source ids when both still hold. `needsRematch` is true when the target folder
 *   holds a message the checkpoint does not account for (the state was lost, the source
 *   UIDVALIDITY changed, the target was recreated, or a run died between an APPEND and its
 *   commit): the pipeline then matches `fingerprints()` (header block + RFC822.SIZE of every target
 *   message, ref = target UID) against the source, so nothing is appended twice.
 * - `tx.write` APPENDs at once: the server makes a message durable when it answers OK, and nothing
 *   appended can be taken back. A Readable body is collected first (imapflow sends a literal of
 *   known length), bounded by the message's size, so memory is one message per connection.
 *   `commit()` only records the ids in the checkpoint and saves it. `abort()` records nothing: such
 *   messages stay on the target, are skipped if written again through the same folder in this run,
 *   and are found by `fingerprints()` after a crash.
 * - Connections: up to `connections` logged-in clients, each with an 'error' listener (imapflow
 *   #302), `doSTARTTLS: true` for STARTTLS mode, certificates verified unless `insecure`.
 * - Without UIDPLUS, commit records every UID the target folder holds (UID SEARCH ALL).
 * - Flags: the checkpoint also keeps, per source id, its target UID (APPENDUID, or the UID a
 *   re-match found) and the flags last written (synced.ts). `syncFlags` STOREs on the target what
 *   changed on the source since then (+FLAGS/-FLAGS, so a flag set only on the target stays); a
 *   message without a record (re-matched after a crash or a lost state) is compared with the
 *   target's current FLAGS instead. Without a known target UID (no UIDPLUS) flags are not carried.
 */
export interface ImapAppendSinkOptions {
  endpoint: RemoteEndpoint;
  credentials: Credentials;
  ca?: Buffer;
  insecure: boolean;
  connections: number;
  checkpoint: Checkpoint;
  log: Logger;
  debug: boolean;
  /** `--map OLD=NEW` rules, applied before the role mapping. */
  map?: readonly MapRule[];
}

/** Checkpoint key of the target side of a folder; NUL cannot occur in a mailbox name. */
export function targetKey(sourcePath: string): string {
  return `\u0000target:${sourcePath}`;
}

export class ImapAppendSink implements Sink {
  readonly caps = { keepsFlags: true, keepsDate: true, serial: false };
  readonly name: string;
  private readonly pool: ImapPool;
  /** The target's hierarchy delimiter; null for a flat namespace. */
  private delimiter: string | null | undefined;
  /** Role -> target path, from one LIST of the target. */
  private roles: Promise<Map<Role, string>> | undefined;
  /** Source path -> its mapping, decided (and reported) once. */
  private readonly decided = new Map<string, Mapped>();
  /** Target path -> the source path that writes into it. */
  private readonly claimed = new Map<string, string>();

  constructor(private readonly opts: ImapAppendSinkOptions) {
    const e = opts.endpoint;
    this.name = `${e.tls === 'tls' ? 'imaps' : 'imap'}://${e.user}@${e.host}:${e.port}`;
    this.pool = new ImapPool({
      ...opts,
      size: opts.connections,
      onConnect: (client) => {
        if (this.delimiter === undefined) this.delimiter = client.namespace?.delimiter ?? '/';
      },
    });
  }

  get where(): string {
    return this.pool.where;
  }

  /** Run `fn` on a pooled connection; errors become MailferryError (`what` names a NO). */
  withConn<T>(fn: (c: Conn) => Promise<T>, what?: string): Promise<T> {
    return this.pool.withConn(fn, what);
  }

  get checkpoint(): Checkpoint {
    return this.opts.checkpoint;
  }

  /** The target path of a source mailbox (decided once per source path, and reported). */
  async targetPath(mailbox: Pick<MailboxInfo, 'path' | 'delimiter' | 'specialUse'>): Promise<string> {
    const done = this.decided.get(mailbox.path);
    if (done !== undefined) return done.path;
    if (this.delimiter === undefined) await this.withConn(async () => undefined);
    const rules = this.opts.map ?? [];
    const roles = sourceRole(mailbox) === undefined ? new Map<Role, string>() : await this.targetRoles();
    const ctx = { rules, delimiter: this.delimiter ?? null, roles, where: this.where };
    const again = this.decided.get(mailbox.path);
    if (again !== undefined) return again.path;
    let m = mapFolder(mailbox, ctx);
    const log = this.opts.log;
    const owner = this.claimed.get(m.path);
    if (owner !== undefined && owner !== mailbox.path && m.reason === 'role') {
      log.warn(`folder "${mailbox.path}" (${m.role ?? ''}): target folder "${m.path}" already receives "${owner}"; keeping the source name`);
      m = mapFolder({ path: mailbox.path, delimiter: mailbox.delimiter }, { ...ctx, rules: [] });
    }
    const other = this.claimed.get(m.path);
    if (other !== undefined && other !== mailbox.path) {
      throw new MailferryError('mailbox', `folder "${mailbox.path}" would go to target folder "${m.path}", which already receives "${other}"`);
    }
    this.claimed.set(m.path, mailbox.path);
    this.decided.set(mailbox.path, m);
    if (m.reason === 'map') log.info(`folder "${mailbox.path}" -> "${m.path}" (--map)`);
    else if (m.reason === 'role') log.info(`folder "${mailbox.path}" -> "${m.path}" (${m.role ?? ''} on the target)`);
    else if (m.role !== undefined) log.info(`folder "${mailbox.path}" -> "${m.path}" (the target has no ${m.role} folder; source name kept)`);
    else if (m.path !== mailbox.path) log.debug(`folder "${mailbox.path}" -> "${m.path}"`);
    return m.path;
  }

  /** The target's special-use folders (by flag, else by well-known name), listed once. */
  private targetRoles(): Promise<Map<Role, string>> {
    this.roles ??= this.withConn(async (c) => {
      const listed = await c.client.list();
      return targetRoles(
        listed.map((l) => ({
          path: l.path,
          ...(l.specialUse === undefined ? {} : { specialUse: l.specialUse }),
          noSelect: l.flags.has('\\Noselect') || l.flags.has('\\NonExistent'),
        })),
        this.delimiter ?? null,
      );
    }, 'cannot list folders');
    return this.roles;
  }

  /** `--map` rules that named no source folder opened so far. */
  unusedMapRules(): MapRule[] {
    const used = new Set([...this.decided.values()].map((m) => m.rule));
    return (this.opts.map ?? []).filter((r) => !used.has(r));
  }

  async open(mailbox: MailboxInfo): Promise<SinkFolder> {
    const path = await this.targetPath(mailbox);
    // CREATE "a/" makes a selectable "a" on Dovecot's Maildir++; children create their parents.
    if (mailbox.noSelect) return new NoselectFolder(mailbox);
    await this.withConn(async (c) => {
      const r = await c.client.mailboxCreate(path);
      if (r.created) await c.client.mailboxSubscribe(path);
    }, `cannot create folder "${path}"`);
    const folder = new ImapFolder(this, mailbox, path, this.opts.log);
    await folder.init();
    return folder;
  }

  async close(): Promise<void> {
    if (this.decided.size > 0) {
      for (const r of this.unusedMapRules()) this.opts.log.warn(`--map ${r.from}=${r.to}: no such source folder`);
    }
    await this.opts.checkpoint.save().catch(() => undefined);
    await this.pool.close();
  }
}

/** A \Noselect container: nothing to write, nothing to match. */
class NoselectFolder implements SinkFolder {
  readonly known = new Set<string>();
  readonly needsRematch = false;
  constructor(readonly mailbox: MailboxInfo) {}
  async *fingerprints(): AsyncIterable<Fingerprint> {}
  async rebase(): Promise<void> {}
  async begin(): Promise<Tx> {
    throw new MailferryError('mailbox', `folder "${this.mailbox.path}" is \\Noselect; it holds no messages`);
  }
}

interface Appended {
  id: string;
  /** flagKey of the flags it was appended with. */
  flags: string;
  uid?: number;
  uidValidity?: bigint;
  dated: boolean;
}

class ImapFolder implements SinkFolder {
  known = new Set<string>();
  needsRematch = false;
  /** Appended but not committed in this run (an aborted Tx): not appended again. */
  private readonly loose = new Map<string, Appended>();
  /** Target UIDs seen by the last fingerprints() pass, for rebase. */
  private seen: { uidValidity: bigint; uids: number[] } | undefined;

  constructor(
    private readonly sink: ImapAppendSink,
    readonly mailbox: MailboxInfo,
    private readonly path: string,
    private readonly log: Logger,
  ) {}

  private get checkpoint(): Checkpoint {
    return this.sink.checkpoint;
  }

  /** EXAMINE the target folder: its UIDVALIDITY and every UID in it. */
  private async examine(): Promise<{ uidValidity: bigint; uids: number[] }> {
    return this.sink.withConn(async (c) => {
      const box = await c.client.mailboxOpen(this.path, { readOnly: true });
      try {
        const uids = box.exists === 0 ? [] : (await c.client.search({ all: true }, { uid: true })) || [];
        return { uidValidity: box.uidValidity, uids };
      } finally {
        await c.client.mailboxClose();
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
          for await (const m of c.client.fetch('1:*', { uid: true, size: true, headers: true })) {
            uids.push(m.uid);
            fps.push({ key: fingerprintKey(toLf(m.headers ?? Buffer.alloc(0)), m.size ?? 0), ref: String(m.uid) });
          }
        }
      } finally {
        await c.client.mailboxClose();
      }
      this.seen = { uidValidity: box.uidValidity, uids };
      return fps;
    }, `cannot open folder "${this.path}"`);
    yield* out;
  }

  /**
   * Record that the matched source ids are in the target, and that every target message seen by
   * fingerprints() is accounted for (one checkpoint write, so a crash leaves the old state).
   */
  async rebase(uidValidity: bigint | undefined, matches: readonly Match[]): Promise<void> {
    const target = this.seen ?? (await this.examine());
    const ids = matches.map((m) => m.id);
    const pairs = matches.map((m): [string, number] => [m.id, Number(m.ref)]);
    this.record(uidValidity, ids, target.uidValidity, target.uids, pairs);
    await this.checkpoint.save();
    this.known = new Set(ids);
    this.needsRematch = false;
  }

  async syncFlags(metas: readonly MessageMeta[]): Promise<number> {
    const f = this.checkpoint.folder(this.mailbox.path);
    const uidOf = f?.targetUids ?? new Map<string, number>();
    const last = f?.flags ?? new Map<string, string>();
    const changed = metas.filter((m) => uidOf.has(m.id) && last.get(m.id) !== flagKey(m.flags));
    const unmapped = metas.filter((m) => !uidOf.has(m.id)).length;
    if (unmapped > 0) this.log.debug(`${this.mailbox.path}: ${unmapped} messages without a known target UID; their flags are not carried`);
    if (changed.length === 0) return 0;
    const stored = await this.sink.withConn(async (c) => {
      await c.client.mailboxOpen(this.path);
      try {
        // Messages without a record are compared with what the target holds now.
        const unknown = changed.filter((m) => !last.has(m.id)).map((m) => uidOf.get(m.id) as number);
        const now = new Map<number, string>();
        if (unknown.length > 0) {
          for await (const msg of c.client.fetch(toRanges(unknown), { uid: true, flags: true }, { uid: true })) now.set(msg.uid, flagKey(msg.flags ?? []));
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
          const set = toRanges(g.uids);
          if (g.add.length > 0) await c.client.messageFlagsAdd(set, g.add, { uid: true });
          if (g.remove.length > 0) await c.client.messageFlagsRemove(set, g.remove, { uid: true });
          if (g.add.length + g.remove.length > 0) n += g.ids.length;
          done.push(...g.ids);
        }
        return { n, done };
      } finally {
        await c.client.mailboxClose();
      }
    }, `cannot store flags in folder "${this.path}"`);
    const byId = new Map(changed.map((m) => [m.id, flagKey(m.flags)]));
    this.checkpoint.update(this.mailbox.path, (g) => {
      for (const id of stored.done) (g.flags ??= new Map()).set(id, byId.get(id) ?? '');
    });
    await this.checkpoint.save();
    if (stored.n > 0) this.log.info(`${this.mailbox.path}: flags updated on ${stored.n} messages on the target`);
    return stored.n;
  }

  async begin(): Promise<Tx> {
    const staged: Appended[] = [];
    const folder = this;
    return {
      async write(meta: MessageMeta, body: Buffer | Readable): Promise<void> {
        const earlier = folder.loose.get(meta.id);
        if (earlier !== undefined) {
          if (!Buffer.isBuffer(body)) body.resume();
          staged.push(earlier);
          return;
        }
        const raw = await collect(body, meta, folder.mailbox.path);
        // Dovecot drops NUL bytes (even in a literal8): the copy is then not byte-exact.
        if (raw.includes(0)) folder.log.warn(`${folder.mailbox.path} ${meta.id}: message holds NUL bytes; the target may drop them`);
        const a = await folder.append(meta, raw);
        folder.loose.set(meta.id, a);
        staged.push(a);
      },
      async commit(): Promise<void> {
        await folder.commit(staged.splice(0));
      },
      async abort(): Promise<void> {
        if (staged.length > 0) {
          folder.log.debug(`${folder.mailbox.path}: ${staged.length} appended messages not committed; they stay on the target`);
        }
        staged.length = 0;
      },
    };
  }

  private async append(meta: MessageMeta, raw: Buffer): Promise<Appended> {
    const flags = [...meta.flags].filter((f) => f.toLowerCase() !== '\\recent');
    const res = await this.sink
      .withConn(async (c) => {
        // imapflow keeps only flags the *selected* mailbox's PERMANENTFLAGS allow: select nothing.
        if (c.client.mailbox !== false) await c.client.mailboxClose();
        return c.client.append(this.path, raw, flags, meta.internalDate);
      })
      .catch((e: unknown) => {
        throw appendError(e, this.mailbox.path, meta.id);
      });
    if (res === false) throw new MailferryError('protocol', `${this.sink.where}: APPEND to "${this.path}" not possible now`, { retryable: true });
    return {
      id: meta.id,
      flags: flagKey(flags),
      dated: meta.internalDate !== undefined,
      ...(res.uid === undefined ? {} : { uid: res.uid }),
      ...(res.uidValidity === undefined ? {} : { uidValidity: res.uidValidity }),
    };
  }

  private async commit(done: Appended[]): Promise<void> {
    if (done.length === 0) return;
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
