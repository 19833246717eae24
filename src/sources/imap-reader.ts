import net from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import iconv from 'iconv-lite';
import { NoOAuth2Login, type Credential } from '../auth/credentials.js';
import { MailferryError } from '../domain/errors.js';
import type { RemoteEndpoint } from '../endpoints/url.js';
import { mapImapError } from './imap-errors.js';
import { parseFetch, parseStatus, ResponseReader, WireError, type FetchItems, type LiteralSink, type Response, type Status } from './imap-wire.js';

/**
 * Our own IMAP connection for reading message bodies, next to imapflow (which keeps LIST, SELECT,
 * SEARCH and everything else). It does only what a backup's FETCH needs: connect (TLS, or
 * mandatory STARTTLS, or plain), log in (AUTHENTICATE PLAIN or LOGIN with a password, OAUTHBEARER
 * or XOAUTH2 with a token, RFC 4616 / RFC 7628), EXAMINE a mailbox (read-only) and
 * `UID FETCH set (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])`.
 *
 * Why: imapflow parses every response into a generic tree, compiles a log line for each even with
 * logging off and reassembles literals with repeated Buffer.concat; for a backup that is most of
 * its CPU. Here a body is the socket chunk's subarray or one buffer filled once (imap-wire.ts),
 * and a large one (`fetchLarge`) is a Readable fed as bytes arrive, with backpressure.
 *
 * Contract: one command at a time. Bodies queued for the consumer are bounded by bytes
 * (`QUEUE_BYTES`; the socket is paused past it). Errors are MailferryError, mapped as the imapflow
 * path maps them: a refused login `auth` (exit 4), socket/TLS failures through mapImapError, a
 * lost connection, BYE or timeout `network` + retryable, a NO to FETCH `mailbox`. A response the
 * reader cannot parse is `protocol` with cause WireError: the caller falls back to imapflow.
 */
export interface ImapReaderOptions {
  endpoint: RemoteEndpoint;
  credential: Credential;
  ca?: Buffer;
  insecure: boolean;
  /** Largest body collected whole (bigger ones go through fetchLarge). */
  maxLiteral: number;
  debug?: (line: string) => void;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
}

export interface ReadBody {
  uid: number;
  flags?: string[];
  internalDate?: string;
  body: Buffer | Readable;
}

const QUEUE_BYTES = 8 << 20;
const CRLF = Buffer.from('\r\n');

interface Running {
  tag: string;
  done: (s: Status) => void;
  onFetch?: (f: FetchItems) => void;
  onContinue?: (text: string) => void;
}

export class ImapReader {
  readonly where: string;
  private capabilities = new Set<string>();
  private sock: net.Socket;
  private readonly reader: ResponseReader;
  private running: Running | undefined;
  private failure: MailferryError | undefined;
  private readonly failWaiters = new Set<(e: MailferryError) => void>();
  private nextTag = 1;
  private connecting = true;
  private upgrading = false;
  private paused = false;
  /** The large body being streamed, if any: it learns of a failure. */
  private stream: Readable | undefined;
  private streamPolicy: ((n: number) => LiteralSink | undefined) | undefined;
  private pending: Promise<Status> | undefined;
  private uidValidity: bigint | undefined;
  private selected: string | undefined;

  private constructor(
    private readonly o: ImapReaderOptions,
    sock: net.Socket,
  ) {
    this.where = `${o.endpoint.host}:${o.endpoint.port}`;
    this.reader = new ResponseReader(
      (r) => this.onResponse(r),
      (n, segments) => this.literalPolicy(n, segments),
      1 << 20,
      o.maxLiteral,
    );
    this.sock = sock;
    this.attach(sock);
  }

  static async connect(o: ImapReaderOptions): Promise<ImapReader> {
    const e = o.endpoint;
    const sock = e.tls === 'tls' ? tls.connect({ host: e.host, port: e.port, ...tlsOptions(o) }) : net.connect({ host: e.host, port: e.port });
    sock.setTimeout(o.connectTimeoutMs ?? 30_000);
    const c = new ImapReader(o, sock);
    try {
      const greeting = c.expectGreeting();
      const hello = await greeting;
      if (hello.status === 'BYE') throw new MailferryError('network', `${c.where} refused the session: ${hello.text}`, { retryable: true });
      if (hello.code !== undefined) c.takeCapabilities(hello.code);
      if (c.capabilities.size === 0) await c.command('CAPABILITY');
      if (e.tls === 'starttls') await c.starttls();
      if (hello.status !== 'PREAUTH') await c.login();
      c.connecting = false;
      c.sock.setTimeout(o.idleTimeoutMs ?? 5 * 60_000);
      return c;
    } catch (err: unknown) {
      const mapped = c.failure ?? c.mapError(err);
      c.fail(mapped);
      throw mapped;
    }
  }

  get broken(): boolean {
    return this.failure !== undefined;
  }

  /** The mailbox selected read-only, and its UIDVALIDITY. */
  async examine(path: string): Promise<bigint> {
    if (this.selected === path && this.uidValidity !== undefined) return this.uidValidity;
    this.selected = undefined;
    this.uidValidity = undefined;
    const s = await this.command(`EXAMINE ${quote(encodeMailbox(path))}`, false);
    if (s.status !== 'OK') throw new MailferryError('mailbox', `cannot open folder "${path}": ${this.where}: server said ${s.text}`);
    if (this.uidValidity === undefined) throw this.protocolError(`no UIDVALIDITY in the answer to EXAMINE "${path}"`);
    this.selected = path;
    return this.uidValidity;
  }

  /**
   * Bodies of the messages in `set` (UIDs), each as the server sent it, in the server's order.
   * A message expunged meanwhile is simply not there; FETCH responses without a body (flag changes)
   * are ignored.
   */
  async *fetch(set: string): AsyncIterable<ReadBody> {
    const queue: ReadBody[] = [];
    let queued = 0;
    let status: Status | undefined;
    let wake: (() => void) | undefined;
    const poke = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const wait = this.start(`UID FETCH ${set} (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])`, {
      onFetch: (f) => {
        if (f.body === undefined || f.body === null) return;
        if (!Buffer.isBuffer(f.body)) throw new WireError('a body streamed outside fetchLarge');
        if (f.uid === undefined) throw new WireError('FETCH response with a body but no UID');
        queue.push({ uid: f.uid, ...(f.flags === undefined ? {} : { flags: f.flags }), ...(f.internalDate === undefined ? {} : { internalDate: f.internalDate }), body: f.body });
        queued += f.body.length;
        if (queued > QUEUE_BYTES) this.pause();
        poke();
      },
    });
    wait.then(
      (s) => {
        status = s;
        poke();
      },
      () => poke(),
    );
    try {
      for (;;) {
        const next = queue.shift();
        if (next !== undefined) {
          queued -= (next.body as Buffer).length;
          if (queued <= QUEUE_BYTES / 2) this.resume();
          yield next;
          continue;
        }
        if (this.failure !== undefined) throw this.failure;
        if (status !== undefined) break;
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      // Left early (the consumer stopped): the rest of the answer is unread; the connection is spent.
      if (status === undefined && this.failure === undefined) this.fail(this.lost('fetch abandoned'));
      this.resume();
    }
    if (status.status !== 'OK') throw this.commandError('UID FETCH', status);
  }

  /**
   * One message's body as a Readable fed as it arrives (backpressure pauses the socket), or
   * undefined when it is gone. The Readable must be drained, then `finish()` awaited, before the
   * next command.
   */
  async fetchLarge(uid: number): Promise<Readable | undefined> {
    let started: ((r: Readable) => void) | undefined;
    const body = new Promise<Readable>((resolve) => (started = resolve));
    this.streamPolicy = () => {
      this.streamPolicy = undefined;
      const out = new Readable({ highWaterMark: 1 << 20, read: () => this.resume() });
      this.stream = out;
      started?.(out);
      return {
        write: (chunk) => {
          if (!out.push(chunk)) this.pause();
        },
        end: () => {
          out.push(null);
          this.stream = undefined;
        },
      };
    };
    const wait = this.start(`UID FETCH ${uid} (UID BODY.PEEK[])`, {});
    try {
      const first = await Promise.race([body, wait]);
      if (first instanceof Readable) {
        wait.catch(() => undefined); // a failure reaches the Readable (fail destroys it) and finish()
        this.pending = wait;
        return first;
      }
      if (first.status !== 'OK') throw this.commandError('UID FETCH', first);
      return undefined;
    } finally {
      this.streamPolicy = undefined;
    }
  }

  /** The end of a fetchLarge whose body was read: its tagged status. */
  async finish(): Promise<void> {
    const p = this.pending;
    this.pending = undefined;
    if (p === undefined) return;
    const s = await p;
    if (s.status !== 'OK') throw this.commandError('UID FETCH', s);
  }

  /** A command is still running (a fetch left before its end). */
  get busy(): boolean {
    return this.running !== undefined || this.pending !== undefined;
  }

  async logout(): Promise<void> {
    if (this.failure !== undefined) return;
    await Promise.race([this.command('LOGOUT', false).catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    this.close();
  }

  close(): void {
    this.fail(new MailferryError('interrupted', 'connection closed'));
  }

  // --- login ------------------------------------------------------------------------------------

  private async starttls(): Promise<void> {
    if (!this.capabilities.has('STARTTLS')) {
      throw new MailferryError('tls', `${this.where} does not offer STARTTLS; refusing to log in in plain text`);
    }
    this.upgrading = true;
    const s = await this.command('STARTTLS', false);
    if (s.status !== 'OK') throw new MailferryError('tls', `${this.where} refused STARTTLS: ${s.text}`);
    if (this.failure !== undefined) throw this.failure;
    if (!this.reader.idle) {
      throw new MailferryError('tls', `${this.where} sent data before the TLS handshake (STARTTLS injection); connection dropped`);
    }
    const plain = this.sock;
    this.detach(plain);
    plain.on('error', () => undefined); // surfaces through the TLS socket
    const secure = tls.connect({ socket: plain, host: this.o.endpoint.host, ...tlsOptions(this.o) });
    secure.setTimeout(this.o.connectTimeoutMs ?? 30_000);
    this.attach(secure);
    this.upgrading = false;
    await this.until(new Promise<void>((resolve) => secure.once('secureConnect', () => resolve())));
    // What was said in clear is forgotten (RFC 3501 §6.2.1).
    this.capabilities.clear();
    await this.command('CAPABILITY');
  }

  private async login(): Promise<void> {
    const user = this.o.endpoint.user;
    const cred = this.o.credential;
    const mechs = [...this.capabilities].filter((c) => c.startsWith('AUTH=')).map((c) => c.slice(5));
    let s: Status;
    if (cred.kind === 'oauth2') {
      if (mechs.includes('OAUTHBEARER')) {
        const gs2 = `n,a=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},`;
        const e = this.o.endpoint;
        s = await this.authenticate('OAUTHBEARER', `${gs2}\x01host=${e.host}\x01port=${e.port}\x01auth=Bearer ${cred.accessToken}\x01\x01`, 'AQ==');
      } else if (mechs.includes('XOAUTH2')) {
        s = await this.authenticate('XOAUTH2', `user=${user}\x01auth=Bearer ${cred.accessToken}\x01\x01`, '');
      } else {
        throw new NoOAuth2Login(this.where, mechs);
      }
    } else if (mechs.includes('PLAIN')) {
      s = await this.authenticate('PLAIN', `\0${user}\0${cred.password}`, '*');
    } else if (!this.capabilities.has('LOGINDISABLED')) {
      s = await this.commandWith(['LOGIN ', astring(user), ' ', astring(cred.password)]);
    } else {
      throw new MailferryError('auth', `${this.where} offers no login method mailferry supports (${mechs.join(' ') || 'LOGINDISABLED'})`);
    }
    if (s.status === 'OK') {
      if (s.code !== undefined) this.takeCapabilities(s.code);
      return;
    }
    const code = s.code?.split(' ')[0]?.toUpperCase();
    if (code === 'UNAVAILABLE') throw new MailferryError('network', `${this.where} cannot log us in now: ${s.text}`, { retryable: true });
    throw new MailferryError('auth', `login refused by ${this.where}: wrong user name or password`);
  }

  /** AUTHENTICATE with an initial response (RFC 4959 SASL-IR, or after the first "+"). */
  private authenticate(mech: string, response: string, cancel: string): Promise<Status> {
    const ir = Buffer.from(response, 'utf8').toString('base64');
    let sentIr = this.capabilities.has('SASL-IR');
    const line = sentIr ? `AUTHENTICATE ${mech} ${ir}` : `AUTHENTICATE ${mech}`;
    return this.command(line, false, {
      shown: `AUTHENTICATE ${mech} ***`,
      onContinue: () => {
        // The first "+" asks for the response; a further one is an error challenge, answered to end it.
        this.write(`${sentIr ? cancel : ir}\r\n`, '***');
        sentIr = true;
      },
    });
  }

  // --- commands ---------------------------------------------------------------------------------

  private expectGreeting(): Promise<Status> {
    return this.until(
      new Promise<Status>((resolve) => {
        this.running = { tag: '*', done: resolve };
      }),
    );
  }

  private command(line: string, must = true, extra: Partial<Running> & { shown?: string } = {}): Promise<Status> {
    return this.start(line, extra).then((s) => {
      if (must && s.status !== 'OK') throw this.commandError(line.split(' ')[0] ?? line, s);
      return s;
    });
  }

  /** A command with synchronizing literals: each `{ literal }` waits for the server's "+". */
  private commandWith(parts: (string | { literal: Buffer })[]): Promise<Status> {
    const chunks: Buffer[][] = [[]];
    for (const p of parts) {
      const cur = chunks[chunks.length - 1] as Buffer[];
      if (typeof p === 'string') cur.push(Buffer.from(p, 'utf8'));
      else {
        cur.push(Buffer.from(`{${p.literal.length}}`));
        chunks.push([p.literal]);
      }
    }
    const [first, ...rest] = chunks.map((c) => Buffer.concat(c));
    let i = 0;
    return this.start((first ?? Buffer.alloc(0)).toString('latin1'), {
      shown: 'LOGIN ***',
      onContinue: () => {
        const next = rest[i++];
        if (next === undefined) throw new WireError('unexpected continuation');
        this.o.debug?.('C: ***');
        this.sock.write(Buffer.concat([next, CRLF]));
      },
    });
  }

  private start(line: string, extra: Partial<Running> & { shown?: string }): Promise<Status> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.running !== undefined) return Promise.reject(new MailferryError('internal', 'imap reader: a command is already running'));
    const tag = `R${this.nextTag++}`;
    const p = new Promise<Status>((resolve) => {
      this.running = {
        tag,
        done: resolve,
        ...(extra.onFetch === undefined ? {} : { onFetch: extra.onFetch }),
        ...(extra.onContinue === undefined ? {} : { onContinue: extra.onContinue }),
      };
    });
    this.write(`${tag} ${line}\r\n`, extra.shown === undefined ? undefined : `${tag} ${extra.shown}`);
    return this.until(p);
  }

  /** Send a line; `shown` replaces it in the debug log when it carries a secret. */
  private write(line: string, shown?: string): void {
    this.o.debug?.(`C: ${shown ?? line.trimEnd()}`);
    this.sock.write(line, 'latin1');
  }

  // --- responses --------------------------------------------------------------------------------

  private literalPolicy(n: number, segments: readonly string[]): LiteralSink | undefined {
    const last = segments[segments.length - 1] ?? '';
    if (this.streamPolicy !== undefined && /BODY\[\] ?\{\d+\}$/i.test(last)) return this.streamPolicy(n);
    return undefined;
  }

  private onResponse(r: Response): void {
    const first = r.segments[0] ?? '';
    const sp = first.indexOf(' ');
    const tag = sp === -1 ? first : first.slice(0, sp);
    const rest = sp === -1 ? '' : first.slice(sp + 1);
    if (this.upgrading && this.running === undefined) {
      throw new MailferryError('tls', `${this.where} sent data before the TLS handshake (STARTTLS injection); connection dropped`);
    }
    if (tag === '+') {
      const cont = this.running?.onContinue;
      if (cont === undefined) throw new WireError('unexpected continuation');
      cont(rest);
      return;
    }
    if (tag === '*') {
      this.onUntagged(r, rest);
      return;
    }
    const running = this.running;
    if (running === undefined || tag !== running.tag) throw new WireError(`unexpected tagged response "${first}"`);
    const s = parseStatus(rest);
    if (s === undefined) throw new WireError(`bad tagged response "${first}"`);
    this.o.debug?.(`S: ${first}`);
    this.running = undefined;
    running.done(s);
  }

  private onUntagged(r: Response, rest: string): void {
    const f = parseFetch(r);
    if (f !== undefined) {
      this.running?.onFetch?.(f);
      return;
    }
    const s = parseStatus(rest);
    if (s !== undefined) {
      if (this.running?.tag === '*') {
        // The greeting.
        this.running.done(s);
        this.running = undefined;
        return;
      }
      if (s.status === 'BYE') {
        if (this.running === undefined || !/^LOGOUT/.test(s.text)) {
          this.o.debug?.(`S: * ${rest}`);
        }
        return; // the close that follows fails what is running, retryably
      }
      const code = s.code?.split(' ');
      if (code?.[0]?.toUpperCase() === 'UIDVALIDITY' && code[1] !== undefined && /^\d+$/.test(code[1])) this.uidValidity = BigInt(code[1]);
      if (code?.[0]?.toUpperCase() === 'CAPABILITY') this.takeCapabilities(s.code ?? '');
      return;
    }
    if (/^CAPABILITY /i.test(rest)) this.takeCapabilities(rest);
    // EXISTS, RECENT, EXPUNGE, FLAGS, ...: nothing we need.
  }

  private takeCapabilities(text: string): void {
    const words = text.split(' ');
    if (words[0]?.toUpperCase() !== 'CAPABILITY') return;
    this.capabilities = new Set(words.slice(1).map((w) => w.toUpperCase()));
  }

  // --- connection state -------------------------------------------------------------------------

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.sock.pause();
    this.sock.setTimeout(0); // a slow consumer is not a silent server
  }

  private resume(): void {
    if (!this.paused || this.failure !== undefined) return;
    this.paused = false;
    this.sock.setTimeout(this.o.idleTimeoutMs ?? 5 * 60_000);
    this.sock.resume();
  }

  private until<T>(p: Promise<T>): Promise<T> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      const onFail = (e: MailferryError): void => reject(e);
      this.failWaiters.add(onFail);
      p.then(
        (v) => {
          this.failWaiters.delete(onFail);
          resolve(v);
        },
        (e: unknown) => {
          this.failWaiters.delete(onFail);
          reject(e);
        },
      );
    });
  }

  private fail(err: MailferryError): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.sock.destroy();
    this.stream?.destroy(err);
    this.stream = undefined;
    for (const w of [...this.failWaiters]) w(err);
    this.failWaiters.clear();
  }

  private mapError(e: unknown): MailferryError {
    if (e instanceof MailferryError) return e;
    if (e instanceof WireError) return this.protocolError(e.message, e);
    return mapImapError(e, this.where);
  }

  private protocolError(message: string, cause?: unknown): MailferryError {
    return new MailferryError('protocol', `${this.where}: ${message}`, { cause: cause ?? new WireError(message) });
  }

  private commandError(what: string, s: Status): MailferryError {
    if (s.status === 'BAD') return this.protocolError(`server said BAD to ${what}: ${s.text}`);
    const code = s.code?.split(' ')[0]?.toUpperCase();
    if (code === 'THROTTLED' || code === 'UNAVAILABLE') {
      return new MailferryError('network', `${this.where} is throttling us (${s.text})`, { retryAfterMs: 15_000 });
    }
    return new MailferryError('mailbox', `${this.where}: server said ${s.text}`);
  }

  private lost(why: string): MailferryError {
    return new MailferryError('network', `connection to ${this.where} lost (${why})`, { retryable: true });
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.upgrading && this.running === undefined) {
      this.fail(new MailferryError('tls', `${this.where} sent data before the TLS handshake (STARTTLS injection); connection dropped`));
      return;
    }
    try {
      this.reader.push(chunk);
    } catch (e: unknown) {
      this.fail(this.mapError(e));
    }
  };

  private readonly onError = (e: Error): void => {
    this.fail(this.mapError(e));
  };

  private readonly onClose = (): void => {
    this.fail(this.lost('closed by the server'));
  };

  private readonly onTimeout = (): void => {
    if (!this.connecting && this.running === undefined) return;
    this.fail(new MailferryError('network', `no answer from ${this.where} in time`, { retryable: true }));
  };

  private attach(sock: net.Socket): void {
    this.sock = sock;
    sock.on('data', this.onData);
    sock.on('error', this.onError);
    sock.on('close', this.onClose);
    sock.on('timeout', this.onTimeout);
  }

  private detach(sock: net.Socket): void {
    sock.off('data', this.onData);
    sock.off('error', this.onError);
    sock.off('close', this.onClose);
    sock.off('timeout', this.onTimeout);
    sock.setTimeout(0);
  }
}

function tlsOptions(o: ImapReaderOptions): tls.ConnectionOptions {
  const host = o.endpoint.host;
  return {
    rejectUnauthorized: !o.insecure,
    ...(net.isIP(host) === 0 ? { servername: host } : {}),
    ...(o.ca === undefined ? {} : { ca: o.ca }),
  };
}

/** A mailbox name on the wire: modified UTF-7 (RFC 3501 §5.1.3) when it is not plain ASCII. */
function encodeMailbox(path: string): string {
  return /[&\u0000-\u001f\u0080-\uffff]/.test(path) ? iconv.encode(path, 'utf-7-imap').toString('latin1') : path;
}

/** A quoted string (RFC 3501 §4.3) for 7-bit text without CR, LF or NUL. */
function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A quoted string where one can carry it, else a literal (8-bit or control characters). */
function astring(s: string): string | { literal: Buffer } {
  return /^[\x01-\x09\x0b\x0c\x0e-\x7f]*$/.test(s) ? quote(s) : { literal: Buffer.from(s, 'utf8') };
}
