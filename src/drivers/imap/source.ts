import type { Credentials } from '../../auth/credentials.js';
import { MailferryError } from '../../domain/errors.js';
import { compareMailboxes, type MailboxInfo, type MessageMeta } from '../../domain/message.js';
import type { RemoteEndpoint } from '../../endpoints/url.js';
import type { Logger } from '../../log/logger.js';
import { toRanges } from '../../state/ids.js';
import { assertAlive, commandError } from './errors.js';
import { resumableBody, type ChunkReader } from './download.js';
import { GMAIL_EXTENSION, gmailFolders, LABEL_QUERY, labelsOf } from './gmail.js';
import { ImapPool, type Conn } from './pool.js';
import { UidValidities, UNUSABLE } from './uid-validity.js';
import type { Fetched, FolderStatus, HeaderSample, Missing, Selected, Source } from '../../sources/source.js';

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
}


/** assertAlive after a command that needs the folder selected. */
const SELECTED = { selected: true };

/** Bytes per partial fetch of a large message (the most of it held in memory at once, with the stream's buffer). */
const DOWNLOAD_CHUNK = 1 << 20;

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

  private withConn<T>(fn: (c: Conn) => Promise<T>): Promise<T> {
    return this.pool.withConn(fn);
  }

  private async openOn(c: Conn, mailbox: MailboxInfo): Promise<{ uidValidity: bigint; exists: number }> {
    assertAlive(c.client, this.where);
    if (c.open?.path !== mailbox.path || c.client.mailbox === false) {
      try {
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
        return all;
      }
      const gmail = gmailFolders(all, important);
      if (gmail === undefined) this.opts.log.warn(`${this.where} speaks ${GMAIL_EXTENSION} but lists no All Mail (\\All): its folders are copied as folders, labels are not kept`);
      else this.opts.log.info(`${this.where}: Gmail mode: All Mail fetched with its labels, label folders made from them`);
      return gmail ?? all;
    });
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
    });
  }

  async *list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta> {
    const metas = await this.withConn(async (c) => {
      const { exists } = await this.openOn(c, mailbox);
      if (exists === 0) return [];
      const found = await c.client.search({ all: true }, { uid: true });
      assertAlive(c.client, this.where, SELECTED);
      // imapflow 2.10.2: false now means the server refused the SEARCH (NO/BAD).
      if (found === false) throw new MailferryError('mailbox', `folder "${mailbox.path}": the server refused UID SEARCH ALL`);
      const uids = found ?? [];
      const want = uids.filter((u) => wanted(String(u)));
      const out: MessageMeta[] = [];
      for (const set of rangeCommands(want)) {
        const query = { uid: true, flags: true, internalDate: true, size: true, ...(mailbox.labelled === true ? LABEL_QUERY : {}) };
        for await (const msg of c.client.fetch(set, query, { uid: true })) {
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
      }
      return out;
    });
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
    });
    yield* samples;
  }

  async *fetch(batch: readonly MessageMeta[], signal: AbortSignal): AsyncIterable<Fetched> {
    const first = batch[0];
    if (first === undefined) return;
    // The batch's connection; a large message's stream may replace a lost one (reconnect below).
    const held: Held = { c: await this.pool.acquire(), dropped: false };
    const onAbort = (): void => {
      held.c.broken = true;
      held.c.client.close();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await this.openOn(held.c, first.mailbox);
      const byId = new Map(batch.map((m) => [m.id, m]));
      const small = batch.filter((m) => (m.size ?? 0) <= this.opts.streamThreshold).map((m) => Number(m.id));
      const large = batch.filter((m) => (m.size ?? 0) > this.opts.streamThreshold);
      for (const set of rangeCommands(small)) {
        const c = held.c;
        const query = { uid: true, flags: true, internalDate: true, size: true, source: true };
        for await (const msg of c.client.fetch(set, query, { uid: true })) {
          const meta = byId.get(String(msg.uid));
          if (meta === undefined || msg.source === undefined) continue;
          yield { meta: refresh(meta, msg.flags, msg.internalDate), body: msg.source };
        }
        assertAlive(c.client, this.where, SELECTED);
      }
      for (const meta of large) {
        const reader = this.chunkReader(held, meta);
        const head = await reader.read(0, DOWNLOAD_CHUNK);
        // Expunged meanwhile, or no bytes sent for it: reconciled by missing() (gone, or retried).
        if (head === false || head.length === 0) continue;
        const what = `${meta.mailbox.path} message ${meta.id}`;
        const whole = this.whole.has(meta.id);
        const body = resumableBody(reader, {
          first: head,
          resume: !whole,
          size: meta.size ?? 0,
          chunk: DOWNLOAD_CHUNK,
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
          const msg = await c.client.fetchOne(meta.id, { uid: true, source: { start, maxLength: length } }, { uid: true });
          assertAlive(c.client, this.where, SELECTED);
          // A message that is there but has nothing from `start` on (its size a multiple of the chunk) ends here.
          return msg === false ? false : (msg.source ?? Buffer.alloc(0));
        } catch (err: unknown) {
          const mapped = commandError(err, c.client, this.where);
          if (mapped.retryable) c.broken = true;
          throw mapped;
        }
      },
      reconnect: async () => {
        if (!held.dropped) {
          held.c.broken = true;
          this.pool.release(held.c);
          held.dropped = true;
        }
        held.c = await this.pool.acquire();
        held.dropped = false;
        await this.openOn(held.c, meta.mailbox);
      },
      abandon: () => {
        held.c.broken = true;
        held.c.client.close();
      },
    };
  }

  /**
   * Which of `ids` are gone: on a connection logged in for the question, the mailbox opened with
   * the UIDVALIDITY it was listed under (else a `mailbox` error), `UID SEARCH UID <set>` (RFC 3501
   * 6.4.4, 6.4.8); a UID it does not return is gone.
   */
  async missing(mailbox: MailboxInfo, ids: readonly string[], signal: AbortSignal): Promise<Missing> {
    if (signal.aborted) throw new MailferryError('interrupted', 'interrupted');
    const c = await this.pool.acquireFresh();
    try {
      await this.openOn(c, mailbox);
      const present = new Set<string>();
      for (const set of rangeCommands(ids.map(Number).filter((u) => Number.isSafeInteger(u) && u > 0))) {
        const found = await c.client.search({ uid: set }, { uid: true });
        assertAlive(c.client, this.where, SELECTED);
        // Never read a refused or empty-handed SEARCH as "none there": that would count mail as vanished.
        if (found === false || found === undefined) throw new MailferryError('mailbox', `folder "${mailbox.path}": the server refused UID SEARCH UID`);
        for (const u of found) present.add(String(u));
      }
      return { gone: new Set(ids.filter((id) => !present.has(id))) };
    } catch (err: unknown) {
      const mapped = commandError(err, c.client, this.where);
      if (mapped.retryable) c.broken = true;
      throw mapped;
    } finally {
      this.pool.release(c);
    }
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

/** UID sets, each short enough for one command line. */
function rangeCommands(uids: number[]): string[] {
  if (uids.length === 0) return [];
  const ranges = toRanges(uids).split(',');
  const out: string[] = [];
  for (let i = 0; i < ranges.length; i += RANGES_PER_COMMAND) out.push(ranges.slice(i, i + RANGES_PER_COMMAND).join(','));
  return out;
}
