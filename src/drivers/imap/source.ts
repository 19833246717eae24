import type { Credentials } from '../../auth/credentials.js';
import { MailferryError } from '../../domain/errors.js';
import { compareMailboxes, type MailboxInfo, type MessageMeta } from '../../domain/message.js';
import type { RemoteEndpoint } from '../../endpoints/url.js';
import type { Logger } from '../../log/logger.js';
import { toRanges } from '../../state/ids.js';
import { MAX_MESSAGE_SIZE, messageLimit } from '../message-limit.js';
import { assertAlive, commandError, literalTooLarge } from './errors.js';
import { resumableBody, type ChunkReader } from './download.js';
import { GMAIL_EXTENSION, gmailFolders, LABEL_QUERY, labelCopyFolders, labelsOf } from './gmail.js';
import type { ImapFlow } from './imapflow.js';
import { capLiterals, ImapPool, LIST_BYTES, type Conn } from './pool.js';
import { UidValidities, UNUSABLE } from './uid-validity.js';
import { ImapWatch } from './idle.js';
import type { Fetched, FolderStatus, FolderWatch, HeaderSample, Missing, Selected, Source, WatchOptions } from '../../sources/source.js';

/**
 * IMAP Source on imapflow. Holds up to `connections` logged-in clients; `fetch` takes one for the
 * duration of a batch (imapflow allows one command at a time per connection). A batch is one
 * `UID FETCH set (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])`; a message larger than
 * `streamThreshold` is streamed on its own with partial fetches so it is never held whole, and
 * resumed from the bytes already received when the connection is lost (download.ts).
 *
 * Connections come from ImapPool (pool.ts), which handles imapflow's traps (the 'error'
 * listener, reconnection, mandatory STARTTLS). A server's BYE is a lost connection (errors.ts,
 * assertAlive), checked before a folder is used on a connection and after every FETCH, SEARCH and
 * download: a command imapflow ended quietly after a BYE (fewer messages, no download, `false`)
 * fails the batch as retryable instead of passing for "no more messages" or "expunged meanwhile".
 *
 * With `labels`, a server that announces X-GM-EXT-1 is read in Gmail mode (gmail.ts): All Mail is
 * listed with each message's labels and Gmail ids, the folders that show labels are handed on as
 * such and never fetched.
 *
 * Every body is bounded (issue 17): a message may take its RFC822.SIZE plus a small tolerance, and
 * never more than `maxMessageSize` (drivers/message-limit.ts). A FETCH refuses a literal over the
 * largest bound of the messages it asks for at its `{n}` marker (pool.ts capLiterals), before a
 * byte of it is held; the messages of that command not yet received are then asked again one by
 * one on a fresh connection, and the one refused alone is that message's fault: not yielded, and
 * `missing()` reports it as refused (skipped, exit 3). So is a body received over its own bound,
 * a message announced over `maxMessageSize`, and a large message's partial fetches that add up to
 * more than its bound (download.ts).
 */
export interface ImapSourceOptions {
  endpoint: RemoteEndpoint;
  credentials: Credentials;
  ca?: Buffer;
  insecure: boolean;
  connections: number;
  streamThreshold: number;
  log: Logger;
  debug: boolean;
  /** The sinks keep Gmail labels: Gmail mode when the server announces X-GM-EXT-1 (gmail.ts). */
  labels?: boolean;
  /** `--max-message-size`; default MAX_MESSAGE_SIZE (1 GiB). */
  maxMessageSize?: number;
  /** The time one LIST, SEARCH or listing may take in all (pool.ts); default COMMAND_MS. */
  commandMs?: number;
  /** The run's abort signal: an interrupt closes every connection at once (pool.ts). */
  signal?: AbortSignal;
}


/** assertAlive after a command that needs the folder selected. */
const SELECTED = { selected: true };

/** The first partial fetch of a large message, and the most a later one grows to (download.ts). */
const DOWNLOAD_CHUNK = 1 << 20;
const DOWNLOAD_MAX_CHUNK = 4 << 20;

/** The connection a batch runs on, which a large message's stream may replace; `dropped`: already given back. */
interface Held {
  c: Conn;
  dropped: boolean;
}

/** More UID ranges than this in one command make lines longer than servers accept (Dovecot: 64 KiB). */
const RANGES_PER_COMMAND = 2000;

export class ImapSource implements Source {
  readonly caps;
  readonly identity: string;
  private readonly pool: ImapPool;
  /** Large messages whose resumed download did not add up to RFC822.SIZE: not resumed again in this run. */
  private readonly whole = new Set<string>();
  /** A folder without a usable UIDVALIDITY gets this run's stand-in (uid-validity.ts). */
  private readonly validities: UidValidities;
  /** Messages refused for their size (folder path NUL id -> why), reported by missing(), never asked for again. */
  private readonly refused = new Map<string, string>();
  /** The LIST entries of `mailboxes()`, handed to each connection's imapflow (knowFolder). */
  private listing = new Map<string, object>();

  constructor(private readonly opts: ImapSourceOptions) {
    const e = opts.endpoint;
    this.identity = `${e.tls === 'tls' ? 'imaps' : 'imap'}://${e.user}@${e.host}:${e.port}`;
    this.caps = { parallel: Math.max(1, opts.connections) };
    this.pool = new ImapPool({ ...opts, size: this.caps.parallel });
    this.validities = new UidValidities((path) => opts.log.warn(`${this.where}: folder "${path}" ${UNUSABLE}`));
  }

  private get where(): string {
    return this.pool.where;
  }

  /** Run `fn` on a pooled connection, preferably one that has `mailbox` open already; `bytes` as ImapPool.withConn's. */
  private withConn<T>(fn: (c: Conn) => Promise<T>, mailbox?: MailboxInfo, bytes?: number): Promise<T> {
    return this.pool.withConn(fn, undefined, mailbox === undefined ? undefined : hasOpen(mailbox), bytes);
  }

  private async openOn(c: Conn, mailbox: MailboxInfo): Promise<{ uidValidity: bigint; exists: number }> {
    assertAlive(c.client, this.where);
    if (c.open?.path !== mailbox.path || c.client.mailbox === false) {
      try {
        knowFolder(c.client, mailbox.path, this.listing.get(mailbox.path));
        const box = await c.client.mailboxOpen(mailbox.path, { readOnly: true });
        assertAlive(c.client, this.where, SELECTED);
        // imapflow leaves uidValidity undefined when the server's is unusable (uid-validity.ts).
        const uidValidity = this.validities.of(mailbox.path, box.uidValidity as bigint | undefined);
        c.open = { path: mailbox.path, uidValidity, exists: box.exists };
      } catch (err: unknown) {
        c.open = undefined;
        const mapped = commandError(err, c.client, this.where);
        if (mapped.kind === 'mailbox') {
          throw new MailferryError('mailbox', `cannot open folder "${mailbox.path}": ${mapped.message}`, { cause: err });
        }
        throw mapped;
      }
    }
    const open = c.open as { uidValidity: bigint; exists: number };
    if (mailbox.uidValidity !== undefined && open.uidValidity !== mailbox.uidValidity) {
      throw new MailferryError('mailbox', `folder "${mailbox.path}" changed UIDVALIDITY during the run; rerun to re-match it`);
    }
    return open;
  }

  async mailboxes(): Promise<MailboxInfo[]> {
    return this.withConn(async (c) => {
      const listed = await c.client.list();
      this.listing = new Map(listed.map((l) => [l.path, l]));
      const byPath = new Map<string, MailboxInfo>();
      const important = new Set(listed.filter((l) => l.flags.has('\\Important')).map((l) => l.path));
      for (const l of listed) {
        const noSelect = l.flags.has('\\Noselect') || l.flags.has('\\NonExistent');
        byPath.set(l.path, {
          path: l.path,
          delimiter: l.delimiter ?? '/',
          ...(l.specialUse === undefined ? {} : { specialUse: l.specialUse }),
          ...(noSelect ? { noSelect: true } : {}),
        });
      }
      // Parents a server does not list still exist as containers.
      for (const m of [...byPath.values()]) {
        if (m.delimiter === '') continue;
        const parts = m.path.split(m.delimiter);
        for (let i = 1; i < parts.length; i++) {
          const p = parts.slice(0, i).join(m.delimiter);
          if (!byPath.has(p)) byPath.set(p, { path: p, delimiter: m.delimiter, noSelect: true });
        }
      }
      const all = [...byPath.values()].sort((a, b) => compareMailboxes(a, b));
      if (!c.client.capabilities.has(GMAIL_EXTENSION)) return all;
      if (this.opts.labels !== true) {
        this.opts.log.info(`${this.where} is Gmail (${GMAIL_EXTENSION}): its folders are copied as folders, so a message is copied into All Mail and once more into each label folder it shows in`);
        return labelCopyFolders(all, important);
      }
      const gmail = gmailFolders(all, important);
      if (gmail === undefined) this.opts.log.warn(`${this.where} speaks ${GMAIL_EXTENSION} but lists no All Mail (\\All): its folders are copied as folders, labels are not kept`);
      else this.opts.log.info(`${this.where}: Gmail mode: All Mail fetched with its labels, label folders made from them`);
      return gmail ?? all;
    }, undefined, LIST_BYTES);
  }

  /** `STATUS (MESSAGES SIZE)`, without selecting; imapflow asks for SIZE only where the server has STATUS=SIZE (RFC 8438). */
  async status(mailbox: MailboxInfo): Promise<FolderStatus> {
    return this.withConn(async (c) => {
      let s: Awaited<ReturnType<typeof c.client.status>>;
      try {
        s = await c.client.status(mailbox.path, { messages: true, size: true });
        assertAlive(c.client, this.where);
      } catch (err: unknown) {
        const mapped = commandError(err, c.client, this.where);
        if (mapped.kind === 'mailbox') throw new MailferryError('mailbox', `cannot ask about folder "${mailbox.path}": ${mapped.message}`, { cause: err });
        throw mapped;
      }
      if (s === false || s.messages === undefined) throw new MailferryError('mailbox', `the server gave no STATUS for folder "${mailbox.path}"`);
      return { messages: s.messages, ...(s.size === undefined ? {} : { bytes: s.size }) };
    });
  }

  async select(mailbox: MailboxInfo): Promise<Selected> {
    return this.withConn(async (c) => {
      const { uidValidity, exists } = await this.openOn(c, { ...mailbox, uidValidity: undefined });
      return { mailbox: { ...mailbox, uidValidity }, count: exists };
    }, mailbox);
  }

  async *list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta> {
    const metas = await this.withConn(async (c) => {
      const { exists } = await this.openOn(c, mailbox);
      if (exists === 0) return [];
      // One round trip (issue 21): the metadata FETCH of 1:* names every UID, so no UID SEARCH ALL
      // before it. `wanted` sees each UID once (a server may repeat a message's FETCH).
      const query = { uid: true, flags: true, internalDate: true, size: true, ...(mailbox.labelled === true ? LABEL_QUERY : {}) };
      const seen = new Set<number>();
      const out: MessageMeta[] = [];
      for await (const msg of c.client.fetch('1:*', query, { uid: true })) {
        if (seen.has(msg.uid)) continue;
        seen.add(msg.uid);
        if (!wanted(String(msg.uid))) continue;
        out.push({
          mailbox,
          id: String(msg.uid),
          size: msg.size ?? 0,
          flags: new Set(msg.flags ?? []),
          ...(msg.internalDate === undefined ? {} : { internalDate: new Date(msg.internalDate) }),
          ...(mailbox.labelled === true ? labelsOf(msg) : {}),
        });
      }
      assertAlive(c.client, this.where, SELECTED);
      // Fewer messages than the folder holds: UID SEARCH ALL says which the FETCH left out, and
      // `wanted` hears of them, so that the pipeline asks `missing()` instead of taking them for
      // archived (exit 0 means complete). The usual case pays nothing for it.
      if (seen.size < (c.client.mailbox === false ? 0 : c.client.mailbox.exists)) {
        const found = await c.client.search({ all: true }, { uid: true });
        assertAlive(c.client, this.where, SELECTED);
        // imapflow 2.10.2: false now means the server refused the SEARCH (NO/BAD).
        if (found === false) throw new MailferryError('mailbox', `folder "${mailbox.path}": the server refused UID SEARCH ALL`);
        for (const u of found ?? []) if (!seen.has(u)) wanted(String(u));
      }
      return out;
    }, mailbox);
    metas.sort((a, b) => Number(a.id) - Number(b.id));
    yield* metas;
  }

  async *headers(mailbox: MailboxInfo): AsyncIterable<HeaderSample> {
    const samples = await this.withConn(async (c) => {
      const { exists } = await this.openOn(c, mailbox);
      const out: HeaderSample[] = [];
      if (exists === 0) return out;
      for await (const msg of c.client.fetch('1:*', { uid: true, size: true, headers: true }, { uid: true })) {
        out.push({ id: String(msg.uid), size: msg.size ?? 0, header: msg.headers ?? Buffer.alloc(0) });
      }
      assertAlive(c.client, this.where, SELECTED);
      return out;
    }, mailbox);
    yield* samples;
  }

  async *fetch(batch: readonly MessageMeta[], signal: AbortSignal): AsyncIterable<Fetched> {
    const first = batch[0];
    if (first === undefined) return;
    // The batch's connection; a large message's stream may replace a lost one (reconnect below).
    const held: Held = { c: await this.pool.acquire(hasOpen(first.mailbox)), dropped: false };
    const onAbort = (): void => {
      held.c.broken = true;
      held.c.client.close();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await this.openOn(held.c, first.mailbox);
      const byId = new Map(batch.map((m) => [m.id, m]));
      const limit = (m: MessageMeta): number => messageLimit(m.size, this.opts.maxMessageSize);
      const todo = batch.filter((m) => !this.refused.has(key(m)) && !this.overMax(m));
      const small = todo.filter((m) => (m.size ?? 0) <= this.opts.streamThreshold).map((m) => Number(m.id));
      const large = todo.filter((m) => (m.size ?? 0) > this.opts.streamThreshold);
      const queue = uidGroups(small);
      for (let group = queue.shift(); group !== undefined; group = queue.shift()) {
        const c = held.c;
        const query = { uid: true, flags: true, internalDate: true, size: true, source: true };
        const got = new Set<number>();
        const restore = capLiterals(c.client, Math.max(...group.map((u) => limit(byId.get(String(u)) as MessageMeta))));
        try {
          for await (const msg of c.client.fetch(toRanges(group), query, { uid: true })) {
            got.add(msg.uid);
            const meta = byId.get(String(msg.uid));
            if (meta === undefined || msg.source === undefined) continue;
            if (msg.source.length > limit(meta)) {
              this.refuse(meta, msg.source.length);
              continue;
            }
            yield { meta: refresh(meta, msg.flags, msg.internalDate), body: msg.source };
          }
          assertAlive(c.client, this.where, SELECTED);
        } catch (err: unknown) {
          const size = literalTooLarge(commandError(err, c.client, this.where));
          if (size === undefined) throw err;
          // One literal over the command's bound: the rest asked again one by one, the one alone refused.
          const left = group.filter((u) => !got.has(u));
          const only = left.length === 1 ? byId.get(String(left[0])) : undefined;
          if (only !== undefined) this.refuse(only, size);
          else queue.unshift(...left.map((u) => [u]));
          await this.renew(held, first.mailbox);
        } finally {
          restore();
        }
      }
      for (const meta of large) {
        const reader = this.chunkReader(held, meta);
        let head: Buffer | false;
        try {
          head = await reader.read(0, DOWNLOAD_CHUNK);
        } catch (err: unknown) {
          const size = literalTooLarge(err);
          if (size === undefined) throw err;
          this.refuse(meta, size);
          await this.renew(held, meta.mailbox);
          continue;
        }
        // Expunged meanwhile, or no bytes sent for it: reconciled by missing() (gone, or retried).
        if (head === false || head.length === 0) continue;
        const what = `${meta.mailbox.path} message ${meta.id}`;
        const whole = this.whole.has(meta.id);
        const body = resumableBody(reader, {
          first: head,
          resume: !whole,
          size: meta.size ?? 0,
          chunk: DOWNLOAD_CHUNK,
          maxChunk: DOWNLOAD_MAX_CHUNK,
          limit: limit(meta),
          signal,
          log: this.opts.log,
          what,
          onMismatch: () => this.whole.add(meta.id),
        });
        yield { meta, body };
        // The sink read the body to its end (or failed, and this generator is being closed).
        if (whole) this.whole.delete(meta.id);
      }
      // The last body was read by the sink by now: a stream that ended early for a BYE fails here.
      assertAlive(held.c.client, this.where, SELECTED);
    } catch (err: unknown) {
      const mapped = signal.aborted ? new MailferryError('interrupted', 'interrupted') : commandError(err, held.c.client, this.where);
      if (mapped.retryable || mapped.kind === 'interrupted') held.c.broken = true;
      throw mapped;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (!held.dropped) this.pool.release(held.c);
    }
  }

  /**
   * Partial fetches of one large message on the batch's connection (download.ts): each chunk is
   * `UID FETCH uid BODY.PEEK[]<start.length>`; a lost connection is replaced by a fresh one with
   * the folder open under the same UIDVALIDITY (else a `mailbox` error: the ids changed meaning).
   */
  private chunkReader(held: Held, meta: MessageMeta): ChunkReader {
    return {
      read: async (start, length) => {
        const c = held.c;
        try {
          assertAlive(c.client, this.where, SELECTED);
          // A server may ignore the range from byte 0 and send the whole message (download.ts), never more.
          const restore = capLiterals(c.client, start === 0 ? Math.max(length, messageLimit(meta.size, this.opts.maxMessageSize)) : length);
          const msg = await c.client.fetchOne(meta.id, { uid: true, source: { start, maxLength: length } }, { uid: true }).finally(restore);
          assertAlive(c.client, this.where, SELECTED);
          // A message that is there but has nothing from `start` on (its size a multiple of the chunk) ends here.
          return msg === false ? false : (msg.source ?? Buffer.alloc(0));
        } catch (err: unknown) {
          const mapped = commandError(err, c.client, this.where);
          if (mapped.retryable) c.broken = true;
          throw mapped;
        }
      },
      reconnect: () => this.renew(held, meta.mailbox),
      abandon: () => {
        held.c.broken = true;
        held.c.client.close();
      },
    };
  }

  /** The batch's connection given back as broken, and a fresh one with `mailbox` open in its place. */
  private async renew(held: Held, mailbox: MailboxInfo): Promise<void> {
    if (!held.dropped) {
      held.c.broken = true;
      this.pool.release(held.c);
      held.dropped = true;
    }
    held.c = await this.pool.acquire();
    held.dropped = false;
    await this.openOn(held.c, mailbox);
  }

  /** A message announced over `maxMessageSize`: refused without asking for its body. */
  private overMax(m: MessageMeta): boolean {
    const max = this.opts.maxMessageSize ?? MAX_MESSAGE_SIZE;
    if ((m.size ?? 0) <= max) return false;
    this.refused.set(key(m), `RFC822.SIZE ${m.size ?? 0} is over --max-message-size (${max} bytes)`);
    return true;
  }

  private refuse(m: MessageMeta, received: number): void {
    const why = `the server sent ${Number.isFinite(received) ? `${received} bytes` : 'a body'} for it, larger than announced (RFC822.SIZE ${m.size ?? 0}) or over --max-message-size`;
    this.opts.log.debug(`${m.mailbox.path} message ${m.id}: ${why}`);
    this.refused.set(key(m), why);
  }

  /**
   * Which of `ids` are gone: on a connection logged in for the question, the mailbox opened with
   * the UIDVALIDITY it was listed under (else a `mailbox` error), `UID SEARCH UID <set>` (RFC 3501
   * 6.4.4, 6.4.8); a UID it does not return is gone.
   */
  async missing(mailbox: MailboxInfo, ids: readonly string[], signal: AbortSignal): Promise<Missing> {
    if (signal.aborted) throw new MailferryError('interrupted', 'interrupted');
    const refused = new Map<string, string>();
    for (const id of ids) {
      const why = this.refused.get(key({ mailbox, id }));
      if (why !== undefined) refused.set(id, why);
    }
    if (refused.size === ids.length) return { gone: new Set(), refused };
    const asked = ids.filter((id) => !refused.has(id));
    const c = await this.pool.acquireFresh();
    try {
      await this.openOn(c, mailbox);
      const present = new Set<string>();
      for (const set of rangeCommands(asked.map(Number).filter((u) => Number.isSafeInteger(u) && u > 0))) {
        const found = await c.client.search({ uid: set }, { uid: true });
        assertAlive(c.client, this.where, SELECTED);
        // Never read a refused or empty-handed SEARCH as "none there": that would count mail as vanished.
        if (found === false || found === undefined) throw new MailferryError('mailbox', `folder "${mailbox.path}": the server refused UID SEARCH UID`);
        for (const u of found) present.add(String(u));
      }
      return { gone: new Set(asked.filter((id) => !present.has(id))), refused };
    } catch (err: unknown) {
      const mapped = commandError(err, c.client, this.where);
      if (mapped.retryable) c.broken = true;
      throw mapped;
    } finally {
      this.pool.release(c);
    }
  }

  /** IDLE on `paths`, one session each, besides this Source's connections (idle.ts). */
  watch(paths: readonly string[], opts: WatchOptions): FolderWatch {
    return new ImapWatch(this.opts, paths, opts, this.opts.log);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

function refresh(meta: MessageMeta, flags: Set<string> | undefined, date: Date | string | undefined): MessageMeta {
  return {
    ...meta,
    ...(flags === undefined ? {} : { flags: new Set(flags) }),
    ...(date === undefined ? {} : { internalDate: new Date(date) }),
  };
}

/**
 * imapflow sends `LIST "" <path>` before the SELECT of a folder its connection has not listed
 * (for the delimiter and special use; its `folders` cache, not in its types): the entry the
 * listing connection got is handed to the others, which saves that round trip per folder and
 * connection (issue 21). Without the cache (another imapflow) nothing changes.
 */
function knowFolder(client: ImapFlow, path: string, entry: object | undefined): void {
  const cache = (client as unknown as { folders?: unknown }).folders;
  if (entry !== undefined && cache instanceof Map && !cache.has(path)) cache.set(path, entry);
}

/** A connection that has `mailbox` open (pool.ts acquire prefers it: no second SELECT). */
function hasOpen(mailbox: MailboxInfo): (c: Conn) => boolean {
  return (c) => c.open?.path === mailbox.path && c.client.mailbox !== false;
}

function key(m: Pick<MessageMeta, 'mailbox' | 'id'>): string {
  return `${m.mailbox.path}\0${m.id}`;
}

/** UIDs in groups, each as one UID set short enough for one command line. */
function uidGroups(uids: number[]): number[][] {
  const out: number[][] = [];
  let ranges = 0;
  let prev = NaN;
  for (const u of [...new Set(uids)].sort((a, b) => a - b)) {
    if (u !== prev + 1 && ++ranges > RANGES_PER_COMMAND) ranges = 1;
    if (u !== prev + 1 && ranges === 1) out.push([]);
    (out.at(-1) as number[]).push(u);
    prev = u;
  }
  return out;
}

/** UID sets, each short enough for one command line. */
function rangeCommands(uids: number[]): string[] {
  if (uids.length === 0) return [];
  const ranges = toRanges(uids).split(',');
  const out: string[] = [];
  for (let i = 0; i < ranges.length; i += RANGES_PER_COMMAND) out.push(ranges.slice(i, i + RANGES_PER_COMMAND).join(','));
  return out;
}
