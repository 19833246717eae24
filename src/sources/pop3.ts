import { MailferryError } from '../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import type { RemoteEndpoint } from '../endpoints/url.js';
import type { Logger } from '../log/logger.js';
import { Pop3Client, type RetrItem } from './pop3-client.js';
import type { Fetched, HeaderSample, Selected, Source } from './source.js';

/**
 * POP3 Source on our own client (src/sources/pop3-client.ts). POP3 has one mailbox, no flags and
 * no internal dates, so `caps` are all false and the single mailbox is INBOX with delimiter ''
 * and no uidValidity: ids are UIDLs (RFC 1939 §7), stable across sessions on their own.
 *
 * One session at a time (`parallel: 1`): a POP3 server may lock the maildrop for the session
 * (Dovecot with `pop3_lock_session = yes`, RFC 1939 §8), so a second connection would wait or
 * fail with [IN-USE]. The session is opened on first use and kept; it sees the maildrop as it was
 * at login. After a dropped connection the next call logs in again and maps UIDLs to the new
 * message numbers, so a retried batch fetches the same messages.
 *
 * `list` yields messages in maildrop order (oldest first), which is what "ascending" means for
 * UIDLs: they are opaque strings. A server without UIDL is refused for now (a `--no-uidl` mode,
 * matching by header hash and size, is planned).
 *
 * `delete(ids)` is for `--delete`: DELE in the current session, then QUIT, because only QUIT
 * makes the server remove them (RFC 1939 §6). Callers pass only ids that are durable in every
 * archive. A session that ends in any other way (crash, dropped connection) deletes nothing.
 */
export interface Pop3SourceOptions {
  endpoint: RemoteEndpoint;
  password: () => Promise<string>;
  ca?: Buffer;
  insecure: boolean;
  streamThreshold: number;
  log: Logger;
  debug: boolean;
  /** Wait for the server while a command is outstanding; default 120 s. */
  timeoutMs?: number;
}

export const POP3_INBOX: MailboxInfo = { path: 'INBOX', delimiter: '' };

interface Drop {
  id: string;
  n: number;
  size: number;
}

interface Session {
  client: Pop3Client;
  /** In maildrop order. */
  messages: Drop[];
  byId: Map<string, Drop>;
}

export class Pop3Source implements Source {
  readonly caps = { flags: false, internalDate: false, mailboxes: false, parallel: 1 };
  readonly identity: string;
  private session: Session | undefined;
  private opening: Promise<Session> | undefined;
  private closed = false;

  constructor(private readonly opts: Pop3SourceOptions) {
    const e = opts.endpoint;
    this.identity = `${e.tls === 'tls' ? 'pop3s' : 'pop3'}://${e.user}@${e.host}:${e.port}`;
  }

  private get where(): string {
    return `${this.opts.endpoint.host}:${this.opts.endpoint.port}`;
  }

  /** The current session, or a fresh one when there is none or it broke. */
  private async open(): Promise<Session> {
    if (this.closed) throw new MailferryError('interrupted', 'source closed');
    if (this.session !== undefined && !this.session.client.broken) return this.session;
    this.session = undefined;
    this.opening ??= this.login().finally(() => {
      this.opening = undefined;
    });
    const s = await this.opening;
    this.session = s;
    return s;
  }

  private async login(): Promise<Session> {
    const e = this.opts.endpoint;
    const log = this.opts.log;
    const client = await Pop3Client.connect({
      host: e.host,
      port: e.port,
      tls: e.tls,
      user: e.user,
      password: await this.opts.password(),
      ...(this.opts.ca === undefined ? {} : { ca: this.opts.ca }),
      insecure: this.opts.insecure,
      ...(this.opts.timeoutMs === undefined ? {} : { idleTimeoutMs: this.opts.timeoutMs }),
      ...(this.opts.debug ? { debug: (line: string) => log.debug(`pop3 ${line}`) } : {}),
    });
    try {
      const sizes = await client.list();
      const uids = await client.uidl();
      if (uids === undefined) {
        throw new MailferryError(
          'usage',
          `POP3 server ${this.where} does not support UIDL, so mailferry cannot tell which messages it already has; ` +
            'a --no-uidl mode (matching by header hash and size) is planned but not available yet',
        );
      }
      const messages: Drop[] = [];
      const byId = new Map<string, Drop>();
      for (const [n, id] of [...uids].sort((a, b) => a[0] - b[0])) {
        if (byId.has(id)) {
          log.warn(`${this.identity}: messages ${byId.get(id)?.n ?? '?'} and ${n} share the UIDL ${id}; only the first is copied`);
          continue;
        }
        const drop = { id, n, size: sizes.get(n) ?? 0 };
        messages.push(drop);
        byId.set(id, drop);
      }
      return { client, messages, byId };
    } catch (err: unknown) {
      client.destroy();
      throw err;
    }
  }

  async mailboxes(): Promise<MailboxInfo[]> {
    return [POP3_INBOX];
  }

  private check(mailbox: MailboxInfo): void {
    if (mailbox.path !== POP3_INBOX.path) {
      throw new MailferryError('mailbox', `POP3 has only INBOX, not "${mailbox.path}"`);
    }
  }

  async select(mailbox: MailboxInfo): Promise<Selected> {
    this.check(mailbox);
    const s = await this.open();
    return { mailbox: POP3_INBOX, count: s.messages.length };
  }

  async *list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta> {
    this.check(mailbox);
    const s = await this.open();
    for (const d of s.messages) {
      if (wanted(d.id)) yield { mailbox, id: d.id, size: d.size, flags: new Set<string>() };
    }
  }

  /** The header block of every message, by `TOP n 0` (for re-matching an archive without state). */
  async *headers(mailbox: MailboxInfo): AsyncIterable<HeaderSample> {
    this.check(mailbox);
    const s = await this.open();
    for (const d of s.messages) {
      const header = await s.client.top(d.n, 0);
      if (header === undefined) {
        throw new MailferryError('mailbox', `${this.where} refused TOP, so the archive cannot be matched against the server`);
      }
      yield { id: d.id, size: d.size, header };
    }
  }

  async *fetch(batch: readonly MessageMeta[], signal: AbortSignal): AsyncIterable<Fetched> {
    if (batch.length === 0) return;
    if (signal.aborted) throw new MailferryError('interrupted', 'interrupted');
    const s = await this.open();
    const metaOf = new Map<number, MessageMeta>();
    const items: RetrItem[] = [];
    for (const meta of batch) {
      const d = s.byId.get(meta.id);
      if (d === undefined) continue; // gone from the maildrop since it was listed
      metaOf.set(d.n, meta);
      items.push({ n: d.n, size: d.size });
    }
    items.sort((a, b) => a.n - b.n);
    const onAbort = (): void => s.client.destroy(new MailferryError('interrupted', 'interrupted'));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const r of s.client.retrieve(items, this.opts.streamThreshold)) {
        const meta = metaOf.get(r.n);
        if (meta === undefined) continue;
        if ('refused' in r) {
          this.opts.log.warn(`${this.identity}: message ${meta.id} not retrieved: server said ${r.refused}`);
          continue;
        }
        yield { meta, body: r.body };
      }
    } catch (err: unknown) {
      if (signal.aborted) throw new MailferryError('interrupted', 'interrupted', { cause: err });
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Delete these messages on the server: DELE each one the session knows, then QUIT, which
   * commits (RFC 1939 §6). Ids no longer on the server are ignored. The session ends either way;
   * the next call opens a new one.
   */
  async delete(ids: readonly string[]): Promise<void> {
    const s = await this.open();
    const numbers = ids.map((id) => s.byId.get(id)?.n).filter((n): n is number => n !== undefined);
    this.session = undefined;
    try {
      const refused = await s.client.dele(numbers);
      for (const n of refused) this.opts.log.warn(`${this.identity}: server refused to delete message ${n}`);
      await s.client.quit();
    } finally {
      s.client.destroy();
    }
  }

  /** End the session with QUIT (throws if the server says it failed); the next call logs in again. */
  async quit(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s === undefined || s.client.broken) return;
    try {
      await s.client.quit();
    } finally {
      s.client.destroy();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const s = this.session ?? (await this.opening?.catch(() => undefined));
    this.session = undefined;
    if (s === undefined) return;
    if (!s.client.broken) {
      await Promise.race([s.client.quit(), new Promise((r) => setTimeout(r, 2000).unref())]).catch(() => undefined);
    }
    s.client.destroy();
  }
}
