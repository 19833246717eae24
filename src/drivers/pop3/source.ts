import { withCredential, type Credentials } from '../../auth/credentials.js';
import { MailferryError } from '../../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../../domain/message.js';
import type { RemoteEndpoint } from '../../endpoints/url.js';
import { contentKey, numberDuplicates } from '../../formats/fingerprint.js';
import type { Logger } from '../../log/logger.js';
import { Pop3Client, type RetrItem } from './client.js';
import type { Fetched, HeaderSample, Missing, Selected, Source, Unlisted } from '../../sources/source.js';

/**
 * POP3 Source on our own client (src/drivers/pop3/client.ts). POP3 has one mailbox, no flags and
 * no internal dates (every MessageMeta has an empty flag set and no internalDate), so the single
 * mailbox is INBOX with delimiter '' and no uidValidity: ids are UIDLs (RFC 1939 §7), stable
 * across sessions on their own.
 *
 * One session at a time (`parallel: 1`): a POP3 server may lock the maildrop for the session
 * (Dovecot with `pop3_lock_session = yes`, RFC 1939 §8), so a second connection would wait or
 * fail with [IN-USE]. The session is opened on first use and kept; it sees the maildrop as it was
 * at login. After a dropped connection the next call logs in again and maps UIDLs to the new
 * message numbers, so a retried batch fetches the same messages.
 *
 * `list` yields messages in maildrop order (oldest first), which is what "ascending" means for
 * UIDLs: they are opaque strings. A server without UIDL is refused unless `noUidl` is set.
 * A UIDL that a second message repeats (RFC 1939 §7 wants it unique) names the first one only;
 * the second is `unlisted` (reported as skipped, exit 3), and so is a message whose `TOP` is
 * refused under `noUidl` (it cannot be named). A `RETR` answered -ERR is not yielded, and
 * `missing()` reports it as refused with the server's words; `missing()` asks a new session's
 * UIDL (the current session is ended with QUIT first) which of the other ids are gone.
 *
 * `noUidl` (`--no-uidl`): ids are content keys instead, `h:<hash of the header block>:<LIST size>`
 * from `TOP n 0` (see contentKey), with `#2`, `#3` added to exact duplicates in maildrop order.
 * They stay stable across sessions while the messages and their order are unchanged; two identical
 * messages are told apart by order alone, and a server that rewrites headers changes the keys.
 * The mailbox then carries a uidValidity (HEADER_KEYS), so an archive filled in the other mode is
 * re-matched by header hash and size (as after an IMAP UIDVALIDITY change), not copied twice.
 *
 * `delete(ids)` is for `--delete`: DELE in the current session, then QUIT, because only QUIT
 * makes the server remove them (RFC 1939 §6). Callers pass only ids that are durable in every
 * archive. A session that ends in any other way (crash, dropped connection) deletes nothing.
 */
export interface Pop3SourceOptions {
  endpoint: RemoteEndpoint;
  credentials: Credentials;
  ca?: Buffer;
  insecure: boolean;
  streamThreshold: number;
  log: Logger;
  debug: boolean;
  /** Wait for the server while a command is outstanding; default 120 s. */
  timeoutMs?: number;
  /** Name messages by header hash and size instead of UIDL (`--no-uidl`). */
  noUidl?: boolean;
  /** `--max-message-size`; default MAX_MESSAGE_SIZE (1 GiB). */
  maxMessageSize?: number;
}

export const POP3_INBOX: MailboxInfo = { path: 'INBOX', delimiter: '' };

/** The uidValidity of the INBOX when ids are header keys: another numbering than UIDLs (none). */
export const HEADER_KEYS = 1n;

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
  /** Messages seen at login that cannot be handed out (a repeated UIDL, a refused TOP). */
  unlisted: Unlisted[];
}

export class Pop3Source implements Source {
  readonly caps = { parallel: 1 };
  readonly identity: string;
  /** The one mailbox, as `select` returns it (with HEADER_KEYS as uidValidity under `noUidl`). */
  readonly inbox: MailboxInfo;
  private session: Session | undefined;
  private opening: Promise<Session> | undefined;
  private closed = false;
  /** What the last `list()` passed over. */
  private passedOver: readonly Unlisted[] = [];
  /** Ids whose RETR the server refused (-ERR), with its words, until `missing()` reports them. */
  private readonly refused = new Map<string, string>();

  constructor(private readonly opts: Pop3SourceOptions) {
    const e = opts.endpoint;
    this.identity = `${e.tls === 'tls' ? 'pop3s' : 'pop3'}://${e.user}@${e.host}:${e.port}`;
    this.inbox = opts.noUidl === true ? { ...POP3_INBOX, uidValidity: HEADER_KEYS } : POP3_INBOX;
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
    const client = await withCredential(this.opts.credentials, this.where, (cred) =>
      Pop3Client.connect({
        host: e.host,
        port: e.port,
        tls: e.tls,
        user: e.user,
        ...(cred.kind === 'password' ? { password: cred.password } : { accessToken: cred.accessToken }),
        ...(this.opts.ca === undefined ? {} : { ca: this.opts.ca }),
        insecure: this.opts.insecure,
        ...(this.opts.timeoutMs === undefined ? {} : { idleTimeoutMs: this.opts.timeoutMs }),
        ...(this.opts.maxMessageSize === undefined ? {} : { maxMessageSize: this.opts.maxMessageSize }),
        ...(this.opts.debug ? { debug: (line: string) => log.debug(`pop3 ${line}`) } : {}),
      }),
    );
    try {
      const sizes = await client.list();
      const unlisted: Unlisted[] = [];
      const uids = this.opts.noUidl === true ? await this.headerKeys(client, sizes, unlisted) : await client.uidl();
      if (uids === undefined) {
        throw new MailferryError(
          'usage',
          `POP3 server ${this.where} does not support UIDL, so mailferry cannot tell which messages it already has; ` +
            'rerun with --no-uidl to tell them apart by header hash and size instead (see its limits in the README)',
        );
      }
      const messages: Drop[] = [];
      const byId = new Map<string, Drop>();
      for (const [n, id] of [...uids].sort((a, b) => a[0] - b[0])) {
        if (byId.has(id)) {
          unlisted.push({ id, reason: `messages ${byId.get(id)?.n ?? '?'} and ${n} share the UIDL ${id} (it should be unique); message ${n} not copied` });
          continue;
        }
        const drop = { id, n, size: sizes.get(n) ?? 0 };
        messages.push(drop);
        byId.set(id, drop);
      }
      return { client, messages, byId, unlisted };
    } catch (err: unknown) {
      client.destroy();
      throw err;
    }
  }

  /** `--no-uidl`: message number -> content key, from `TOP n 0` and the LIST size, in maildrop order. */
  private async headerKeys(client: Pop3Client, sizes: ReadonlyMap<number, number>, unlisted: Unlisted[]): Promise<Map<number, string>> {
    const numbers = [...sizes.keys()].sort((a, b) => a - b);
    const refusedAll = (): MailferryError =>
      new MailferryError('usage', `POP3 server ${this.where} refuses TOP, which --no-uidl needs to name messages by their headers`);
    if (numbers.length > 0 && client.capabilities.size > 0 && !client.capabilities.has('TOP')) throw refusedAll();
    const named: number[] = [];
    const keys: string[] = [];
    for await (const { n, header } of client.headers(numbers)) {
      if (header === undefined) {
        unlisted.push({ reason: `the server refused TOP for message ${n}, so without UIDL it cannot be named; not copied` });
        continue;
      }
      named.push(n);
      keys.push(contentKey(header, sizes.get(n) ?? 0));
    }
    if (named.length === 0 && numbers.length > 0) throw refusedAll();
    const ids = numberDuplicates(keys);
    return new Map(named.map((n, i) => [n, ids[i] as string]));
  }

  async mailboxes(): Promise<MailboxInfo[]> {
    return [this.inbox];
  }

  private check(mailbox: MailboxInfo): void {
    if (mailbox.path !== POP3_INBOX.path) {
      throw new MailferryError('mailbox', `POP3 has only INBOX, not "${mailbox.path}"`);
    }
  }

  async select(mailbox: MailboxInfo): Promise<Selected> {
    this.check(mailbox);
    const s = await this.open();
    return { mailbox: this.inbox, count: s.messages.length };
  }

  async *list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta> {
    this.check(mailbox);
    const s = await this.open();
    this.passedOver = s.unlisted;
    for (const d of s.messages) {
      if (wanted(d.id)) yield { mailbox, id: d.id, size: d.size, flags: new Set<string>() };
    }
  }

  unlisted(): readonly Unlisted[] {
    return this.passedOver;
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
      yield { id: d.id, size: d.size, header, altSize: d.size + 2 };
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
      if (this.refused.has(meta.id)) continue; // refused in this run (a retried batch): missing() says so
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
          this.refused.set(meta.id, r.refused);
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

  /** Refused RETRs as the server said; the rest checked against a new session's listing. */
  async missing(mailbox: MailboxInfo, ids: readonly string[], signal: AbortSignal): Promise<Missing> {
    this.check(mailbox);
    if (signal.aborted) throw new MailferryError('interrupted', 'interrupted');
    await this.quit().catch(() => undefined); // a server that fails QUIT deletes nothing: nothing to lose
    const s = await this.open();
    const gone = new Set<string>();
    const refused = new Map<string, string>();
    for (const id of ids) {
      const why = this.refused.get(id);
      this.refused.delete(id);
      if (!s.byId.has(id)) gone.add(id);
      else if (why !== undefined) refused.set(id, why);
    }
    return { gone, refused };
  }

  /**
   * Delete these messages on the server: DELE each one the session knows, then QUIT, which
   * commits (RFC 1939 §6). Ids no longer on the server are ignored. Resolves with how many were
   * removed. The session ends either way; the next call opens a new one.
   */
  async delete(ids: readonly string[]): Promise<number> {
    const s = await this.open();
    const numbers = ids.map((id) => s.byId.get(id)?.n).filter((n): n is number => n !== undefined);
    this.session = undefined;
    try {
      const refused = await s.client.dele(numbers);
      for (const n of refused) this.opts.log.warn(`${this.identity}: server refused to delete message ${n}`);
      await s.client.quit();
      return numbers.length - refused.length;
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
