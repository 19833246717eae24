import type { ImapFlowOptions } from 'imapflow';
import { ImapFlow } from './imapflow.js';
import { imapAuth, NoOAuth2Login, withCredential, type Credential, type Credentials } from '../../auth/credentials.js';
import { MailferryError } from '../../domain/errors.js';
import type { RemoteEndpoint } from '../../endpoints/url.js';
import type { Logger } from '../../log/logger.js';
import { MAX_MESSAGE_SIZE } from '../message-limit.js';
import { checkedConnect, usualPort } from '../scheme.js';
import { assertAlive, commandError, isAlive, mapImapError, noteFault, printable } from './errors.js';

/**
 * A pool of logged-in imapflow clients, shared by the IMAP Source and the IMAP APPEND Sink.
 * imapflow runs one command at a time per connection, so concurrency means several connections,
 * at most `size` of them. imapflow traps handled here: every client gets an 'error' listener (an
 * unhandled one kills the process, imapflow #302) and is dropped when it fires; imapflow does not
 * reconnect, so a broken client is replaced on the next acquire; STARTTLS is opportunistic unless
 * `doSTARTTLS: true`, which imap:// sets so a server cannot downgrade us to plain text.
 *
 * A server's BYE ends the connection as a cut would (errors.ts, assertAlive): a connection is
 * handed out only while alive, `withConn` checks it again after `fn` ran (a command imapflow ended
 * quietly after the BYE fails the use, retryable, and its result is not used), and a connection
 * that is no longer alive is not pooled again. The BYE's text is logged (debug) when the
 * connection closes, and is in the lost-connection error the retry logs.
 *
 * What a server may make us buffer or wait for is bounded (issue 17). imapflow bounds one
 * response (options below: a line, a literal, a response's bytes and tokens); a command's answer
 * of many responses (an endless LIST, SEARCH or metadata FETCH) and its time are bounded here, per
 * `withConn` use (guard): COMMAND_BYTES received (plus PER_MESSAGE per message of the folder
 * selected) and COMMAND_MS (plus PER_MESSAGE_MS per message) in all, besides imapflow's idle timeout, which a server trickling a byte
 * now and then never trips. Over either, the connection is dropped: too much is a server fault
 * (`protocol`, exit 5), too slow a retryable network error.
 */
export interface ImapPoolOptions {
  endpoint: RemoteEndpoint;
  /** Asked for every new connection, so an expired OAuth2 token is replaced (auth/credentials.ts). */
  credentials: Credentials;
  ca?: Buffer;
  insecure: boolean;
  size: number;
  log: Logger;
  debug: boolean;
  /** The largest literal a server may send (a message body); default MAX_MESSAGE_SIZE. */
  maxMessageSize?: number;
  /** A `withConn` use's time limit; default COMMAND_MS. */
  commandMs?: number;
  /** The run's: once aborted, every connection is closed, so a command in flight ends at once (SIGTERM). */
  signal?: AbortSignal;
  /** Called once per new client after login (e.g. to read its NAMESPACE). */
  onConnect?: (client: ImapFlow) => void;
}

export interface Conn {
  client: ImapFlow;
  broken: boolean;
  /** Path and UIDVALIDITY of the mailbox this connection has open (the Source's business). */
  open?: { path: string; uidValidity: bigint; exists: number };
}

/** One response line (a SEARCH of ~4M UIDs), and the parse tree nodes of one response. */
const MAX_LINE = 32 << 20;
const MAX_TOKENS = 200_000;
/** A `withConn` use: bytes received (plus PER_MESSAGE for each message of the folder selected) and time. */
export const COMMAND_BYTES = 4 << 20;
export const PER_MESSAGE = 16 << 10;
/**
 * A use that lists folders (LIST, and LSUB where imapflow asks it): LIST_BYTES in all, whatever
 * folder the connection has open: 256 KiB, plus LIST_FOLDERS folders of PER_FOLDER bytes (a LIST
 * line is ~40-100 bytes). imapflow keeps every parsed entry until the command ends, ~11 bytes of
 * heap per byte received, so an endless LIST under COMMAND_BYTES peaked at 130-138 MB.
 */
export const LIST_FOLDERS = 10_000;
export const PER_FOLDER = 100;
export const LIST_BYTES = (256 << 10) + LIST_FOLDERS * PER_FOLDER;
export const PER_MESSAGE_MS = 10;
export const COMMAND_MS = 10 * 60_000;

export class ImapPool {
  readonly where: string;
  private readonly idle: Conn[] = [];
  private readonly all = new Set<Conn>();
  private readonly waiters: { resolve: (c: Conn) => void; reject: (e: unknown) => void }[] = [];
  private creating = 0;
  private closed = false;

  constructor(private readonly opts: ImapPoolOptions) {
    this.where = `${opts.endpoint.host}:${opts.endpoint.port}`;
    opts.signal?.addEventListener('abort', () => this.interrupt(), { once: true });
  }

  /** The run was interrupted: every command in flight fails now as `interrupted`, not when its server answers. */
  private interrupt(): void {
    for (const c of this.all) {
      noteFault(c.client, new MailferryError('interrupted', 'interrupted'), this.where);
      c.broken = true;
      c.client.close();
    }
  }

  private connect(): Promise<Conn> {
    return withCredential(this.opts.credentials, this.where, (cred) => this.login(cred));
  }

  private async login(cred: Credential): Promise<Conn> {
    const e = this.opts.endpoint;
    const options: ImapFlowOptions = {
      host: e.host,
      port: e.port,
      secure: e.tls === 'tls',
      doSTARTTLS: e.tls === 'starttls' ? true : e.tls === 'plain' ? false : undefined,
      auth: imapAuth(e.user, cred),
      tls: {
        rejectUnauthorized: !this.opts.insecure,
        ...(this.opts.ca === undefined ? {} : { ca: this.opts.ca }),
      },
      logger: this.opts.debug ? imapLogger(this.opts.log) : false,
      disableAutoIdle: true,
      connectionTimeout: 30_000,
      greetingTimeout: 30_000,
      socketTimeout: 5 * 60_000,
      maxLiteralSize: this.opts.maxMessageSize ?? MAX_MESSAGE_SIZE,
      maxResponseSize: (this.opts.maxMessageSize ?? MAX_MESSAGE_SIZE) + MAX_LINE,
      maxLineLength: MAX_LINE,
      maxResponseTokens: MAX_TOKENS,
    };
    const client = new ImapFlow(options);
    const conn: Conn = { client, broken: false };
    client.on('error', (err: unknown) => {
      conn.broken = true;
      noteFault(client, err, this.where);
      this.opts.log.debug(`imap connection error: ${mapImapError(err, this.where).message}`);
    });
    client.on('close', () => {
      conn.broken = true;
      // imapflow keeps the server's BYE text (`byeReason`); our own LOGOUT's BYE is `closedByClient`.
      if (client.byeReason !== undefined && !client.closedByClient) {
        this.opts.log.debug(`${this.where}: the server ended the session: BYE ${printable(client.byeReason)}`);
      }
    });
    try {
      // imapflow's `greetingReceived` (2.10, not in its types): the server spoke, so it is plain.
      const greeted = (): boolean => (client as unknown as { greetingReceived?: boolean }).greetingReceived === true;
      await checkedConnect(e, client.connect(), { drop: () => client.close(), greeted });
    } catch (err: unknown) {
      client.close();
      const auth = [...client.capabilities.keys()].filter((k) => k.startsWith('AUTH=')).map((k) => k.slice(5));
      if (cred.kind === 'oauth2' && client.capabilities.size > 0 && !auth.some((m) => ['OAUTHBEARER', 'XOAUTH2', 'XOAUTH'].includes(m))) {
        throw new NoOAuth2Login(this.where, auth);
      }
      const portHint = usualPort(e);
      throw mapImapError(err, this.where, portHint === undefined ? {} : { portHint });
    }
    this.opts.onConnect?.(client);
    return conn;
  }

  /**
   * A logged-in connection; at most `size` exist at once, others wait. An idle one that `prefer`
   * accepts is taken first (the Source's: one with the folder already open, which saves a SELECT).
   */
  async acquire(prefer?: (c: Conn) => boolean): Promise<Conn> {
    if (this.closed) throw new MailferryError('interrupted', 'connections closed');
    const i = prefer === undefined ? -1 : this.idle.findIndex(prefer);
    if (i >= 0) this.idle.push(...this.idle.splice(i, 1));
    for (;;) {
      const c = this.idle.pop();
      if (c === undefined) break;
      if (!c.broken && isAlive(c.client)) return c;
      this.all.delete(c);
      c.client.close();
    }
    if (this.all.size + this.creating < Math.max(1, this.opts.size)) {
      this.creating++;
      try {
        const c = await this.connect();
        this.all.add(c);
        // Interrupted while it logged in: interrupt() did not see it.
        if (this.opts.signal?.aborted === true) this.interrupt();
        return c;
      } finally {
        this.creating--;
      }
    }
    return new Promise<Conn>((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  release(c: Conn): void {
    if (c.broken || this.closed || !isAlive(c.client)) {
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

  /**
   * A connection logged in just now, for a question no older session may answer (the Source's
   * `missing`: a session that fell short must not vouch for itself): a pooled connection is taken
   * and replaced by a new login in its place, so there are never more than `size`. Release it as usual.
   */
  async acquireFresh(): Promise<Conn> {
    const old = await this.acquire();
    this.all.delete(old);
    old.client.close();
    this.creating++;
    let c: Conn;
    try {
      c = await this.connect();
    } catch (e: unknown) {
      this.creating--;
      const w = this.waiters.shift();
      if (w) this.acquire().then(w.resolve, w.reject);
      throw e;
    }
    this.creating--;
    this.all.add(c);
    return c;
  }

  /**
   * Run `fn` on a pooled connection; errors become MailferryError (`what` prefixes a NO). `bytes`:
   * the most it may receive in all, for a use whose answer does not grow with the folder selected
   * (LIST_BYTES for a listing); default COMMAND_BYTES plus PER_MESSAGE per message selected.
   */
  async withConn<T>(fn: (c: Conn) => Promise<T>, what?: string, prefer?: (c: Conn) => boolean, bytes?: number): Promise<T> {
    const c = await this.acquire(prefer);
    const stop = this.guard(c, bytes);
    try {
      const out = await fn(c);
      assertAlive(c.client, this.where);
      return out;
    } catch (err: unknown) {
      const mapped = commandError(err, c.client, this.where);
      if (mapped.retryable) c.broken = true;
      if (what !== undefined && mapped.kind === 'mailbox') {
        throw new MailferryError('mailbox', `${what}: ${mapped.message}`, { cause: err });
      }
      throw mapped;
    } finally {
      stop();
      this.release(c);
    }
  }

  /**
   * Bound one use of `c`: COMMAND_BYTES received, plus PER_MESSAGE for each message of the folder
   * it has selected (a SEARCH ALL, the flags or the headers of every message are legitimately
   * that large), or `flat` bytes in all when given, and `commandMs`; over
   * either, the fault is noted for commandError and the connection closed, which fails the
   * command in flight at once. Returns the function that ends the watch.
   */
  private guard(c: Conn, flat?: number): () => void {
    let received = 0;
    const ms = this.opts.commandMs ?? COMMAND_MS;
    const drop = (fault: MailferryError): void => {
      noteFault(c.client, fault, this.where);
      c.broken = true;
      c.client.close();
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received <= (flat ?? COMMAND_BYTES)) return;
      const box = c.client.mailbox;
      const budget = flat ?? COMMAND_BYTES + (box === false ? 0 : box.exists * PER_MESSAGE);
      if (received > budget) drop(new MailferryError('protocol', `${this.where} sent more than ${mib(budget)} MiB in answer to one command; connection dropped`));
    };
    // imapflow's socket (not in its types): every byte read, before TLS and parsing are done with it.
    const socket = (c.client as unknown as { socket?: NodeJS.EventEmitter | false }).socket || undefined;
    socket?.on('data', onData);
    const started = Date.now();
    let timer: NodeJS.Timeout;
    const check = (): void => {
      // The folder selected meanwhile may be large: PER_MESSAGE_MS more for each of its messages.
      const box = c.client.mailbox;
      const allowed = ms + (box === false ? 0 : box.exists * PER_MESSAGE_MS);
      const left = allowed - (Date.now() - started);
      if (left > 0) timer = setTimeout(check, left);
      else drop(new MailferryError('network', `${this.where} sends too slowly: no complete answer after ${Math.round(allowed / 1000)} s`, { retryable: true }));
    };
    timer = setTimeout(check, ms);
    return () => {
      clearTimeout(timer);
      socket?.off('data', onData);
    };
  }

  /** Log out every connection (2 s at most each); never throws. */
  async close(): Promise<void> {
    this.closed = true;
    const conns = [...this.all];
    this.all.clear();
    this.idle.length = 0;
    for (const w of this.waiters.splice(0)) w.reject(new MailferryError('interrupted', 'connections closed'));
    await Promise.all(
      conns.map(async (c) => {
        if (!c.broken) {
          await Promise.race([c.client.logout(), new Promise((r) => setTimeout(r, 2000).unref())]).catch(() => undefined);
        }
        c.client.close();
      }),
    );
  }
}

/**
 * Until the returned function is called, a literal over `bytes` ends `client`'s connection at its
 * `{n}` marker, before a byte of it is buffered (imapflow's LiteralTooLarge, noted by the 'error'
 * listener; errors.ts isLiteralTooLarge). imapflow reads the bound from its parser at every
 * literal, so it is set per command there (not in imapflow's types); the connection's own bound
 * (maxMessageSize) is put back afterwards.
 */
export function capLiterals(client: ImapFlow, bytes: number): () => void {
  const parser = (client as unknown as { streamer?: { maxLiteralSize?: number } }).streamer;
  if (parser === undefined || typeof parser.maxLiteralSize !== 'number') return () => undefined;
  const before = parser.maxLiteralSize;
  parser.maxLiteralSize = Math.min(before, bytes);
  return () => {
    parser.maxLiteralSize = before;
  };
}

/** Bytes in MiB for a message: one decimal below 10 (LIST_BYTES is 1.2 MiB). */
function mib(bytes: number): string {
  const m = bytes / 2 ** 20;
  return m < 10 ? m.toFixed(1).replace(/\.0$/, '') : String(Math.round(m));
}

function imapLogger(log: Logger): NonNullable<ImapFlowOptions['logger']> {
  const emit = (o: unknown): void => log.debug(`imap ${JSON.stringify(o)}`);
  return { debug: emit, info: emit, warn: emit, error: emit } as NonNullable<ImapFlowOptions['logger']>;
}
