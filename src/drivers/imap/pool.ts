import type { ImapFlowOptions } from 'imapflow';
import { ImapFlow } from './imapflow.js';
import { imapAuth, NoOAuth2Login, withCredential, type Credential, type Credentials } from '../../auth/credentials.js';
import { MailferryError } from '../../domain/errors.js';
import type { RemoteEndpoint } from '../../endpoints/url.js';
import type { Logger } from '../../log/logger.js';
import { checkedConnect } from '../scheme.js';
import { assertAlive, commandError, isAlive, mapImapError, printable } from './errors.js';

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
  /** Called once per new client after login (e.g. to read its NAMESPACE). */
  onConnect?: (client: ImapFlow) => void;
}

export interface Conn {
  client: ImapFlow;
  broken: boolean;
  /** Path and UIDVALIDITY of the mailbox this connection has open (the Source's business). */
  open?: { path: string; uidValidity: bigint; exists: number };
}

export class ImapPool {
  readonly where: string;
  private readonly idle: Conn[] = [];
  private readonly all = new Set<Conn>();
  private readonly waiters: { resolve: (c: Conn) => void; reject: (e: unknown) => void }[] = [];
  private creating = 0;
  private closed = false;

  constructor(private readonly opts: ImapPoolOptions) {
    this.where = `${opts.endpoint.host}:${opts.endpoint.port}`;
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
    };
    const client = new ImapFlow(options);
    const conn: Conn = { client, broken: false };
    client.on('error', (err: unknown) => {
      conn.broken = true;
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
      throw mapImapError(err, this.where);
    }
    this.opts.onConnect?.(client);
    return conn;
  }

  /** A logged-in connection; at most `size` exist at once, others wait. */
  async acquire(): Promise<Conn> {
    if (this.closed) throw new MailferryError('interrupted', 'connections closed');
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

  /** Run `fn` on a pooled connection; errors become MailferryError (`what` prefixes a NO). */
  async withConn<T>(fn: (c: Conn) => Promise<T>, what?: string): Promise<T> {
    const c = await this.acquire();
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
      this.release(c);
    }
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

function imapLogger(log: Logger): NonNullable<ImapFlowOptions['logger']> {
  const emit = (o: unknown): void => log.debug(`imap ${JSON.stringify(o)}`);
  return { debug: emit, info: emit, warn: emit, error: emit } as NonNullable<ImapFlowOptions['logger']>;
}
