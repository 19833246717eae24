import type { ImapFlow } from 'imapflow';
import { MailferryError } from '../../domain/errors.js';
import { backoffMs, sleep } from '../../domain/retry.js';
import type { Logger } from '../../log/logger.js';
import type { FolderWatch, WatchOptions } from '../../sources/source.js';
import { assertAlive, commandError, connectionLost } from './errors.js';
import { ImapPool, type Conn, type ImapPoolOptions } from './pool.js';

/**
 * IDLE (RFC 2177) on a few folders, for watch mode: the Source's optional `watch` (the contract
 * is in sources/source.ts). One session per folder (not NOTIFY, RFC 5465: docs/notify.md says why), each from a pool of one (pool.ts: the login,
 * a fresh OAuth2 token for each new session, imapflow's traps), EXAMINEd read-only, so watching
 * changes no flag.
 *
 * imapflow 2.10.2, as used here (`disableAutoIdle`, as every mailferry connection): `idle()`
 * sends IDLE and resolves only when the IDLE ends, which is when another command is run on the
 * connection (imapflow sends DONE first) or the connection goes; an untagged EXISTS that changes
 * the count, in IDLE or in any response, is an 'exists' event. Its own `maxIdleTime` restart is
 * not used: the renewal is a NOOP every `renewMs` (imapflow ends the IDLE with DONE, runs the
 * NOOP, and IDLE is sent again), so a session is never in one IDLE for longer than RFC 2177's 29
 * minutes and a dead peer is found by the NOOP's timeout. While idling imapflow answers a quiet
 * socket (its socketTimeout) with a NOOP of its own rather than an error.
 *
 * A folder counts as changed when its session opens it (mail may have come while nobody was
 * watching: the first, and every reconnection) and on every 'exists'; with `opts.also`, on an
 * untagged FETCH with FLAGS ('flags': another client set or cleared a flag, RFC 3501 7.4.2) and
 * on EXPUNGE ('expunge', 7.4.1), said SETTLE_MS after the first of them (a client marking a
 * thread read sends one STORE per message, or one for many: either way one pass). A lost session (a cut, a
 * BYE, a server restart) is opened again after a backoff that doubles up to `backoff.maxMs`, for
 * ever; a refused login or an untrusted certificate cannot pass by waiting and fails `changes()`,
 * and so does a folder that cannot be opened the first time (a name that is not there).
 */
/** How long after a flag change or an expunge the folder is said to have changed. */
const SETTLE_MS = 300;

export class ImapWatch implements FolderWatch {
  private readonly pending = new Set<string>();
  private readonly settling = new Map<string, NodeJS.Timeout>();
  private readonly open = new Set<string>();
  private readonly stop = new AbortController();
  private wake: (() => void) | undefined;
  private failure: MailferryError | undefined;
  private readonly loops: Promise<void>[];

  constructor(
    private readonly pool: Omit<ImapPoolOptions, 'size'>,
    paths: readonly string[],
    private readonly opts: WatchOptions,
    private readonly log: Logger,
  ) {
    this.loops = [...new Set(paths)].map((p) => this.follow(p));
  }

  get live(): number {
    return this.open.size;
  }

  async changes(ms: number, signal: AbortSignal): Promise<string[]> {
    if (this.failure === undefined && this.pending.size === 0 && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, ms));
        signal.addEventListener('abort', done, { once: true });
        this.wake = done;
      });
    }
    if (this.failure !== undefined) throw this.failure;
    const out = [...this.pending];
    this.pending.clear();
    return out;
  }

  async close(): Promise<void> {
    this.stop.abort();
    for (const t of this.settling.values()) clearTimeout(t);
    this.settling.clear();
    await Promise.all(this.loops);
  }

  private mark(path: string): void {
    this.pending.add(path);
    this.wake?.();
  }

  /** A flag change or an expunge: said once the burst it may belong to has settled. */
  private markSoon(path: string): void {
    if (this.settling.has(path)) return;
    this.settling.set(
      path,
      setTimeout(() => {
        this.settling.delete(path);
        this.mark(path);
      }, SETTLE_MS),
    );
  }

  private fail(e: MailferryError): void {
    this.failure ??= e;
    this.wake?.();
  }

  /** One folder's session, opened again whenever it is lost, until close(). */
  private async follow(path: string): Promise<void> {
    const where = `${this.pool.endpoint.host}:${this.pool.endpoint.port}`;
    let failures = 0;
    let opened = false;
    while (!this.stop.signal.aborted) {
      const pool = new ImapPool({ ...this.pool, size: 1 });
      let conn: Conn | undefined;
      try {
        conn = await pool.acquire();
        const client = conn.client;
        const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
        client.on('exists', () => this.mark(path));
        if (this.opts.also?.flags === true) client.on('flags', () => this.markSoon(path));
        if (this.opts.also?.expunges === true) client.on('expunge', () => this.markSoon(path));
        await client.mailboxOpen(path, { readOnly: true });
        assertAlive(client, where, { selected: true });
        opened = true;
        failures = 0;
        this.open.add(path);
        this.mark(path);
        this.log.debug(`watching ${path} on ${where} (IDLE)`);
        await this.idle(client, closed, where);
      } catch (e: unknown) {
        if (this.stop.signal.aborted) break;
        const err = conn === undefined ? (e instanceof MailferryError ? e : new MailferryError('network', String(e), { retryable: true })) : commandError(e, conn.client, where);
        if (err.kind === 'auth' || err.kind === 'tls' || err.kind === 'usage' || err.kind === 'internal') {
          this.fail(err);
          return;
        }
        if (err.kind === 'mailbox' && !opened) {
          this.fail(new MailferryError('usage', `cannot watch folder "${path}": ${err.message}`, { cause: err }));
          return;
        }
        const wait = backoffMs(failures++, this.opts.backoff);
        this.log.warn(`watching ${path}: ${err.message}; reconnecting in ${(wait / 1000).toFixed(1)} s`);
        this.open.delete(path);
        await sleep(wait, this.stop.signal);
      } finally {
        this.open.delete(path);
        await pool.close();
      }
    }
  }

  /** IDLE until the session is lost (throws) or close() (returns), renewed every `renewMs`. */
  private async idle(client: ImapFlow, closed: Promise<void>, where: string): Promise<void> {
    for (;;) {
      const idling = client.idle().then(
        () => 'ended' as const,
        () => 'ended' as const,
      );
      let timer: NodeJS.Timeout | undefined;
      let onStop: (() => void) | undefined;
      const renew = new Promise<'renew' | 'stop'>((resolve) => {
        timer = setTimeout(() => resolve('renew'), this.opts.renewMs);
        onStop = () => resolve('stop');
        if (this.stop.signal.aborted) resolve('stop');
        else this.stop.signal.addEventListener('abort', onStop, { once: true });
      });
      const why = await Promise.race([closed.then(() => 'lost' as const), renew, idling]);
      clearTimeout(timer);
      if (onStop !== undefined) this.stop.signal.removeEventListener('abort', onStop);
      if (why === 'lost') throw connectionLost(client, where);
      if (why === 'stop') return;
      if (why === 'renew') {
        // The NOOP ends the IDLE (imapflow sends DONE first); the loop sends IDLE again.
        await client.noop();
        await idling;
      } else {
        // The IDLE ended without us (the server ended it, or refused it): wait a moment, so a
        // server that keeps ending it is not answered by a busy loop.
        await sleep(500, this.stop.signal);
      }
      assertAlive(client, where, { selected: true });
    }
  }
}
