import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import { MailferryError } from '../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import type { RemoteEndpoint } from '../endpoints/url.js';
import type { Logger } from '../log/logger.js';
import { toRanges } from '../state/ids.js';
import { mapImapError } from './imap-errors.js';
import type { Fetched, HeaderSample, Selected, Source } from './source.js';

/**
 * IMAP Source on imapflow. Holds up to `connections` logged-in clients; `fetch` takes one for the
 * duration of a batch (imapflow allows one command at a time per connection). A batch is one
 * `UID FETCH set (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])`; a message larger than
 * `streamThreshold` is streamed on its own with partial fetches so it is never held whole.
 *
 * imapflow traps handled here: an 'error' event without a listener kills the process (imapflow
 * #302), so every client gets one and is dropped when it fires; imapflow does not reconnect, so a
 * dropped client is replaced by a fresh one on the next acquire; STARTTLS is opportunistic unless
 * `doSTARTTLS: true`, which we set for imap:// so a server cannot downgrade us to plain text.
 */
export interface ImapSourceOptions {
  endpoint: RemoteEndpoint;
  password: () => Promise<string>;
  ca?: Buffer;
  insecure: boolean;
  connections: number;
  streamThreshold: number;
  log: Logger;
  debug: boolean;
}

interface Conn {
  client: ImapFlow;
  broken: boolean;
  /** Path and UIDVALIDITY of the mailbox this connection has open. */
  open?: { path: string; uidValidity: bigint; exists: number };
}

/** More UID ranges than this in one command make lines longer than servers accept (Dovecot: 64 KiB). */
const RANGES_PER_COMMAND = 2000;

export class ImapSource implements Source {
  readonly caps;
  readonly identity: string;
  private readonly idle: Conn[] = [];
  private readonly all = new Set<Conn>();
  private waiters: { resolve: (c: Conn) => void; reject: (e: unknown) => void }[] = [];
  private creating = 0;
  private closed = false;

  constructor(private readonly opts: ImapSourceOptions) {
    const e = opts.endpoint;
    this.identity = `${e.tls === 'tls' ? 'imaps' : 'imap'}://${e.user}@${e.host}:${e.port}`;
    this.caps = { flags: true, internalDate: true, mailboxes: true, parallel: Math.max(1, opts.connections) };
  }

  private get where(): string {
    return `${this.opts.endpoint.host}:${this.opts.endpoint.port}`;
  }

  private async connect(): Promise<Conn> {
    const e = this.opts.endpoint;
    const options: ImapFlowOptions = {
      host: e.host,
      port: e.port,
      secure: e.tls === 'tls',
      doSTARTTLS: e.tls === 'starttls' ? true : e.tls === 'plain' ? false : undefined,
      auth: { user: e.user, pass: await this.opts.password() },
      tls: {
        rejectUnauthorized: !this.opts.insecure,
        ...(this.opts.ca === undefined ? {} : { ca: this.opts.ca }),
      },
      logger: this.opts.debug ? imapLogger(this.opts.log) : false,
      disableAutoIdle: true,
      connectionTimeout: 30_000,
      greetingTimeout: 30_000,
      socketTimeout: 5 * 60_000,
    };
    const client = new ImapFlow(options);
    const conn: Conn = { client, broken: false };
    client.on('error', (err: unknown) => {
      conn.broken = true;
      this.opts.log.debug(`imap connection error: ${mapImapError(err, this.where).message}`);
    });
    client.on('close', () => {
      conn.broken = true;
    });
    try {
      await client.connect();
    } catch (err: unknown) {
      client.close();
      throw mapImapError(err, this.where);
    }
    return conn;
  }

  /** A logged-in connection; at most `connections` exist at once. */
  private async acquire(): Promise<Conn> {
    if (this.closed) throw new MailferryError('interrupted', 'source closed');
    for (;;) {
      const c = this.idle.pop();
      if (c === undefined) break;
      if (!c.broken) return c;
      this.all.delete(c);
    }
    if (this.all.size + this.creating < this.caps.parallel) {
      this.creating++;
      try {
        const c = await this.connect();
        this.all.add(c);
        return c;
      } finally {
        this.creating--;
      }
    }
    return new Promise<Conn>((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private release(c: Conn): void {
    if (c.broken) {
      this.all.delete(c);
      c.client.close();
      // Let a waiter open a fresh connection in place of the broken one.
      const w = this.waiters.shift();
      if (w) this.acquire().then(w.resolve, w.reject);
      return;
    }
    const w = this.waiters.shift();
    if (w) w.resolve(c);
    else this.idle.push(c);
  }

  private async withConn<T>(fn: (c: Conn) => Promise<T>): Promise<T> {
    const c = await this.acquire();
    try {
      return await fn(c);
    } catch (err: unknown) {
      const mapped = mapImapError(err, this.where);
      if (mapped.retryable) c.broken = true;
      throw mapped;
    } finally {
      this.release(c);
    }
  }

  private async openOn(c: Conn, mailbox: MailboxInfo): Promise<{ uidValidity: bigint; exists: number }> {
    if (c.open?.path !== mailbox.path || c.client.mailbox === false) {
      try {
        const box = await c.client.mailboxOpen(mailbox.path, { readOnly: true });
        c.open = { path: mailbox.path, uidValidity: box.uidValidity, exists: box.exists };
      } catch (err: unknown) {
        c.open = undefined;
        const mapped = mapImapError(err, this.where);
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
      return [...byPath.values()].sort((a, b) => compareMailboxes(a, b));
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
      const uids = (await c.client.search({ all: true }, { uid: true })) || [];
      const want = uids.filter((u) => wanted(String(u)));
      const out: MessageMeta[] = [];
      for (const set of rangeCommands(want)) {
        for await (const msg of c.client.fetch(set, { uid: true, flags: true, internalDate: true, size: true }, { uid: true })) {
          out.push({
            mailbox,
            id: String(msg.uid),
            size: msg.size ?? 0,
            flags: new Set(msg.flags ?? []),
            ...(msg.internalDate === undefined ? {} : { internalDate: new Date(msg.internalDate) }),
          });
        }
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
      return out;
    });
    yield* samples;
  }

  async *fetch(batch: readonly MessageMeta[], signal: AbortSignal): AsyncIterable<Fetched> {
    const first = batch[0];
    if (first === undefined) return;
    const c = await this.acquire();
    const onAbort = (): void => {
      c.broken = true;
      c.client.close();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await this.openOn(c, first.mailbox);
      const byId = new Map(batch.map((m) => [m.id, m]));
      const small = batch.filter((m) => (m.size ?? 0) <= this.opts.streamThreshold).map((m) => Number(m.id));
      const large = batch.filter((m) => (m.size ?? 0) > this.opts.streamThreshold);
      for (const set of rangeCommands(small)) {
        const query = { uid: true, flags: true, internalDate: true, size: true, source: true };
        for await (const msg of c.client.fetch(set, query, { uid: true })) {
          const meta = byId.get(String(msg.uid));
          if (meta === undefined || msg.source === undefined) continue;
          yield { meta: refresh(meta, msg.flags, msg.internalDate), body: msg.source };
        }
      }
      for (const meta of large) {
        const dl = await c.client.download(meta.id, undefined, { uid: true, chunkSize: 1 << 20 });
        if (dl.content === undefined) continue; // expunged meanwhile
        yield { meta, body: dl.content };
      }
    } catch (err: unknown) {
      const mapped = signal.aborted ? new MailferryError('interrupted', 'interrupted') : mapImapError(err, this.where);
      if (mapped.retryable || mapped.kind === 'interrupted') c.broken = true;
      throw mapped;
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.release(c);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const conns = [...this.all];
    this.all.clear();
    this.idle.length = 0;
    await Promise.all(
      conns.map(async (c) => {
        if (c.broken) return c.client.close();
        await Promise.race([c.client.logout(), new Promise((r) => setTimeout(r, 2000).unref())]).catch(() => undefined);
        c.client.close();
      }),
    );
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

/** INBOX first, then by path components, so parents come before children. */
function compareMailboxes(a: MailboxInfo, b: MailboxInfo): number {
  const ai = a.path.toUpperCase() === 'INBOX';
  const bi = b.path.toUpperCase() === 'INBOX';
  if (ai !== bi) return ai ? -1 : 1;
  const pa = a.delimiter === '' ? [a.path] : a.path.split(a.delimiter);
  const pb = b.delimiter === '' ? [b.path] : b.path.split(b.delimiter);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] as string;
    const y = pb[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

function imapLogger(log: Logger): NonNullable<ImapFlowOptions['logger']> {
  const emit = (o: unknown): void => log.debug(`imap ${JSON.stringify(o)}`);
  return { debug: emit, info: emit, warn: emit, error: emit } as NonNullable<ImapFlowOptions['logger']>;
}
