import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { NoOAuth2Login } from '../../auth/credentials.js';
import { MailferryError, errnoCode } from '../../domain/errors.js';
import { mapNetError } from '../../domain/net-errors.js';
import type { RemoteEndpoint } from '../../endpoints/url.js';
import { checkedConnect, usualPort } from '../scheme.js';
import {
  BufferBody,
  deferred,
  LISTING_LIMIT,
  LISTING_LINE,
  LISTING_LINES,
  PIPELINE_BYTES,
  PIPELINE_DEPTH,
  Pop3ProtocolError,
  Pop3Unsolicited,
  ResponseReader,
  retrLimit,
  STREAM_HWM,
  StreamBody,
  type BodyTarget,
  type Flow,
  type Reply,
  type RetrItem,
  type Retrieved,
} from './reader.js';

export type { Reply, RetrItem, Retrieved } from './reader.js';

/**
 * A small POP3 client of our own (node-pop3 0.11 loses bytes and hangs; see docs/pop3.md).
 *
 * - RFC 1939 commands (USER/PASS, STAT, LIST, UIDL, TOP, RETR, DELE, RSET, QUIT), RFC 2449 CAPA,
 *   response codes and PIPELINING, RFC 2595 STLS, RFC 5034 AUTH with SASL PLAIN (RFC 4616), and
 *   with an OAuth2 access token SASL OAUTHBEARER (RFC 7628) or XOAUTH2, whichever CAPA offers.
 * - Bytes stay bytes: responses are parsed as Buffers; only status lines and listings (ASCII by
 *   protocol) become strings, message bodies never do.
 * - A multi-line body is read by `DotDecoder` (reader.ts), a byte-level state machine that finds the
 *   terminator and undoes dot-stuffing (RFC 1939 §3) across any chunking of the byte stream.
 * - RETR bodies up to a threshold are collected into one Buffer (preallocated from the LIST size,
 *   so a message is held once); bigger ones are a Readable whose backpressure pauses the socket.
 * - Where CAPA says PIPELINING, several RETR/DELE are in flight at once (bounded by count and bytes).
 * - Every failure is a MailferryError: socket, DNS and TLS errors are mapped like IMAP's; a dropped
 *   connection or timeout is retryable; a refused login is 'auth'; [IN-USE] is a retryable
 *   'network' error ("mailbox locked by another session").
 */
export type Pop3Tls = 'tls' | 'starttls' | 'plain';

export interface Pop3ClientOptions {
  host: string;
  port: number;
  /** 'tls': implicit TLS (pop3s, 995); 'starttls': STLS required; 'plain': no TLS at all. */
  tls: Pop3Tls;
  user: string;
  /** Exactly one of password and accessToken (OAuth2). */
  password?: string;
  accessToken?: string;
  ca?: Buffer;
  insecure?: boolean;
  /** Time allowed for connect, TLS, greeting and login together; default 30 s. */
  connectTimeoutMs?: number;
  /** Time to wait for the server while a command is outstanding; default 120 s. */
  idleTimeoutMs?: number;
  /** Protocol trace (commands and status lines; passwords redacted, no bodies). */
  debug?: (line: string) => void;
  /** The largest message RETR may send, whatever LIST says; default MAX_MESSAGE_SIZE (1 GiB). */
  maxMessageSize?: number;
}

/**
 * Deadlines per response besides the idle timeout (a server sending a byte every 20 s is never
 * idle): a single-line reply has the idle time, a listing five times that, a RETR the idle time
 * plus its LIST size at MIN_RATE. Time the consumer keeps the socket paused is not counted.
 */
const MIN_RATE = 32 << 10;
const LISTING_TURNS = 5;

interface InFlight {
  item: RetrItem;
  reply: Promise<Reply>;
  target: BufferBody | StreamBody;
  weight: number;
}

interface SendOptions {
  multi?: boolean;
  body?: (reply: Reply) => BodyTarget;
  /** Log the command as "<verb> ***". */
  secret?: boolean;
  /** Accept a "+ " continuation (SASL) as the reply. */
  continuation?: boolean;
  /** Overall time for the response (default: the idle time, a listing LISTING_TURNS times it). */
  deadlineMs?: number;
}

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

/** "PASS x" -> "PASS ***", "AUTH PLAIN x" -> "AUTH ***", a bare SASL response -> "***". */
function redacted(line: string): string {
  return /^(PASS|AUTH)\s/i.test(line) ? `${line.split(' ')[0] ?? ''} ***` : '***';
}


export class Pop3Client {
  readonly where: string;
  /** CAPA keywords (upper case) and their arguments; empty when the server has no CAPA. */
  readonly capabilities = new Map<string, string[]>();
  private capaOk = false;
  private sock: net.Socket;
  private readonly reader = new ResponseReader();
  private failure: MailferryError | undefined;
  private readonly failed = deferred<never>();
  private connecting = true;
  private paused = false;
  private pausedAt = 0;
  private readonly idleMs: number;
  private readonly watch: NodeJS.Timeout;
  /** While connecting, on a port not the scheme's usual one: what a refused or silent port's error adds (scheme.ts). */
  private readonly portHint: { portHint?: string };

  private constructor(
    private readonly o: Pop3ClientOptions,
    sock: net.Socket,
  ) {
    this.where = `${o.host}:${o.port}`;
    const hint = usualPort({ kind: 'pop3', user: o.user, host: o.host, port: o.port, tls: o.tls });
    this.portHint = hint === undefined ? {} : { portHint: hint };
    this.idleMs = o.idleTimeoutMs ?? 120_000;
    this.sock = sock;
    this.attach(sock);
    this.watch = setInterval(this.checkDeadline, Math.min(1000, Math.max(50, this.idleMs / 4)));
    this.watch.unref();
  }

  private readonly checkDeadline = (): void => {
    if (this.paused || this.connecting) return;
    const late = this.reader.overdue();
    if (late === undefined) return;
    this.fail(new MailferryError('network', `${this.where} sends too slowly: no complete answer after ${Math.round(late.ms / 1000)} s`, { retryable: true }));
  };

  /** The lines of a listing (LIST, UIDL, CAPA): a million at most, 1 KB each (reader.ts). */
  private lines(buf: Buffer, what: string): string[] {
    const out = buf
      .toString('latin1')
      .split('\r\n')
      .filter((l) => l !== '');
    if (out.length > LISTING_LINES) throw this.protocolError(`${what} has more than ${LISTING_LINES} lines`);
    if (out.some((l) => l.length > LISTING_LINE)) throw this.protocolError(`${what} has a line over ${LISTING_LINE} bytes`);
    return out;
  }

  /** Connect, read the greeting, CAPA, STLS when asked, log in. */
  static async connect(o: Pop3ClientOptions): Promise<Pop3Client> {
    if (/[\r\n\0]/.test(o.user) || /[\r\n\0]/.test(o.password ?? '') || /[\r\n\0\x01]/.test(o.accessToken ?? '')) {
      throw new MailferryError('usage', 'the POP3 user name and password may not contain line breaks or NUL');
    }
    const sock =
      o.tls === 'tls' ? tls.connect({ host: o.host, port: o.port, ...tlsOptions(o) }) : net.connect({ host: o.host, port: o.port });
    sock.setTimeout(o.connectTimeoutMs ?? 30_000);
    const c = new Pop3Client(o, sock);
    const endpoint: RemoteEndpoint = { kind: 'pop3', user: o.user, host: o.host, port: o.port, tls: o.tls };
    try {
      await checkedConnect(endpoint, c.open(sock), { drop: (err) => c.fail(err), greeted: () => sock.bytesRead > 0 });
      return c;
    } catch (e: unknown) {
      const err = e instanceof MailferryError ? e : (c.failure ?? c.mapError(e));
      c.fail(err);
      throw err;
    }
  }

  /** The greeting, CAPA, STLS when asked, the login. */
  private async open(sock: net.Socket): Promise<void> {
    const greeting = this.expect();
    await this.until(once(sock, this.o.tls === 'tls' ? 'secureConnect' : 'connect'));
    const hello = await greeting;
    if (hello.status !== '+OK') {
      throw new MailferryError('network', `${this.where} refused the session: ${printable(hello.text)}`, { retryable: true });
    }
    await this.capa();
    if (this.o.tls === 'starttls') await this.starttls();
    await this.login();
    this.connecting = false;
    this.sock.setTimeout(this.idleMs);
  }

  /** True once the connection failed or ended; a new client is needed. */
  get broken(): boolean {
    return this.failure !== undefined;
  }

  get secure(): boolean {
    return this.sock instanceof tls.TLSSocket && this.sock.encrypted;
  }

  get pipelining(): boolean {
    return this.capabilities.has('PIPELINING');
  }

  /** `STAT`: message count and total size of the maildrop. */
  async stat(): Promise<{ count: number; size: number }> {
    const r = await this.command('STAT');
    const m = /^(\d+)\s+(\d+)/.exec(r.text);
    if (m === null) throw this.protocolError(`bad STAT reply ${JSON.stringify(printable(r.text))}`);
    return { count: Number(m[1]), size: Number(m[2]) };
  }

  /** `LIST`: message number -> size on the wire (CRLF). */
  async list(): Promise<Map<number, number>> {
    const { reply, body } = await this.collect('LIST');
    if (reply.status !== '+OK') throw this.commandError('LIST', reply);
    const out = new Map<number, number>();
    for (const l of this.lines(body, 'LIST')) {
      const m = /^(\d+)\s+(\d+)/.exec(l);
      if (m === null) throw this.protocolError(`bad LIST line ${JSON.stringify(printable(l))}`);
      out.set(Number(m[1]), Number(m[2]));
    }
    return out;
  }

  /** `UIDL`: message number -> unique id; undefined when the server has no UIDL (it is optional). */
  async uidl(): Promise<Map<number, string> | undefined> {
    if (this.capaOk && !this.capabilities.has('UIDL')) return undefined;
    const { reply, body } = await this.collect('UIDL');
    if (reply.status !== '+OK') {
      if (reply.code === 'SYS/TEMP') throw this.commandError('UIDL', reply);
      return undefined;
    }
    const out = new Map<number, string>();
    // RFC 1939 §7 says 1-70 printable characters; a server's longer one, or one with a space or
    // '%', is still its name for the message: kept as sent (the archive makes it safe on disk).
    for (const l of this.lines(body, 'UIDL')) {
      const m = /^(\d+)[ \t]+(.*\S)\s*$/.exec(l);
      if (m === null) throw this.protocolError(`bad UIDL line ${JSON.stringify(printable(l))}`);
      out.set(Number(m[1]), m[2] as string);
    }
    return out;
  }

  /** `TOP n lines`: the header block (and that many body lines); undefined when refused. */
  async top(n: number, bodyLines = 0): Promise<Buffer | undefined> {
    const { reply, body } = await this.collect(`TOP ${n} ${bodyLines}`);
    return reply.status === '+OK' ? body : undefined;
  }

  /**
   * `TOP n 0` for each message (the header block), pipelined when the server allows it, yielded in
   * the order given; `header` is undefined when the server refused that one. Leaving the loop early
   * drops the connection (replies are still outstanding).
   */
  async *headers(numbers: readonly number[]): AsyncGenerator<{ n: number; header: Buffer | undefined }> {
    const depth = this.pipelining ? PIPELINE_DEPTH : 1;
    const inflight: { n: number; reply: Promise<{ reply: Reply; body: Buffer }> }[] = [];
    let next = 0;
    try {
      for (;;) {
        while (next < numbers.length && inflight.length < depth) {
          const n = numbers[next++] as number;
          const reply = this.collect(`TOP ${n} 0`);
          reply.catch(() => undefined); // awaited below, unless the loop is left early
          inflight.push({ n, reply });
        }
        const current = inflight.shift();
        if (current === undefined) break;
        const { reply, body } = await current.reply;
        if (reply.status !== '+OK' && reply.code === 'SYS/TEMP') throw this.commandError(`TOP ${current.n} 0`, reply);
        yield { n: current.n, header: reply.status === '+OK' ? body : undefined };
      }
    } finally {
      if (inflight.length > 0) {
        this.fail(new MailferryError('network', `header listing from ${this.where} abandoned mid-response`, { retryable: true }));
      }
    }
  }

  /**
   * `RETR` each item, pipelined when the server allows it. Yields in the order given. A body of at
   * most `streamThreshold` bytes (by its LIST size) is a Buffer; a bigger one a Readable that must
   * be read to the end before the next item is asked for. A message the server refuses is
   * yielded as `refused`. Leaving the loop early drops the connection (its state is unknown).
   */
  async *retrieve(items: readonly RetrItem[], streamThreshold: number): AsyncGenerator<Retrieved> {
    const depth = this.pipelining ? PIPELINE_DEPTH : 1;
    const inflight: InFlight[] = [];
    let next = 0;
    let bytes = 0;
    let current: InFlight | undefined;
    try {
      for (;;) {
        // Refilled once half the window is used up, the commands in one write (one TLS record,
        // one system call) rather than one write per RETR.
        if (inflight.length === 0 || (inflight.length <= depth / 2 && bytes <= PIPELINE_BYTES / 2)) {
          this.sock.cork();
          while (next < items.length && (inflight.length === 0 || (inflight.length < depth && bytes < PIPELINE_BYTES))) {
            const item = items[next++] as RetrItem;
            const streaming = item.size === undefined || item.size > streamThreshold;
            const limit = retrLimit(item.size, this.o.maxMessageSize);
            const what = `message ${item.n} (LIST size ${item.size ?? 'none'})`;
            const target = streaming ? new StreamBody(this.flow, limit, what) : new BufferBody(item.size, limit, what);
            const deadlineMs = this.idleMs + Math.ceil(((item.size ?? limit) * 1000) / MIN_RATE);
            const reply = this.send(`RETR ${item.n}`, { multi: true, body: () => target, deadlineMs });
            const weight = Math.max(item.size ?? STREAM_HWM, 1024);
            inflight.push({ item, reply, target, weight });
            bytes += weight;
          }
          this.sock.uncork();
        }
        current = inflight.shift();
        if (current === undefined) break;
        bytes -= current.weight;
        try {
          const reply = await current.reply;
          if (reply.status !== '+OK') {
            if (reply.code === 'SYS/TEMP') throw this.commandError(`RETR ${current.item.n}`, reply);
            yield { n: current.item.n, refused: `the server refused RETR: ${printable(reply.text)}` };
          } else if (current.target instanceof StreamBody) {
            yield { n: current.item.n, body: current.target.stream };
            if (!current.target.stream.readableEnded) current.target.stream.resume();
            await current.target.finished.promise;
          } else {
            yield { n: current.item.n, body: await current.target.result.promise };
          }
        } catch (e: unknown) {
          // Larger than its LIST size allows (the session is dropped: see onData): this message
          // is refused; the rest of the batch fails with the session and is retried on a new one.
          if (!(e instanceof MailferryError && e.kind === 'message')) throw e;
          yield { n: current.item.n, refused: e.message };
        }
        current = undefined;
      }
    } finally {
      if (current !== undefined || inflight.length > 0) {
        this.fail(new MailferryError('network', `retrieval from ${this.where} abandoned mid-response`, { retryable: true }));
      }
    }
  }

  /** `DELE` each message (pipelined when allowed); returns the numbers the server refused. Only QUIT commits. */
  async dele(numbers: readonly number[]): Promise<number[]> {
    const refused: number[] = [];
    const check = (n: number, r: Reply): void => {
      if (r.status === '+OK') return;
      if (r.code === 'SYS/TEMP') throw this.commandError(`DELE ${n}`, r);
      refused.push(n);
    };
    if (this.pipelining) {
      const replies = numbers.map((n) => this.send(`DELE ${n}`));
      for (let i = 0; i < numbers.length; i++) check(numbers[i] as number, await (replies[i] as Promise<Reply>));
    } else {
      for (const n of numbers) check(n, await this.send(`DELE ${n}`));
    }
    return refused;
  }

  /** `RSET`: undo every DELE of this session. */
  async rset(): Promise<void> {
    await this.command('RSET');
  }

  async noop(): Promise<void> {
    await this.command('NOOP');
  }

  /**
   * `QUIT`: the server enters the UPDATE state and removes the messages marked by DELE (RFC 1939
   * §6). Throws when it says it could not; a session that ends without QUIT deletes nothing.
   */
  async quit(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const r = await this.send('QUIT');
    this.fail(new MailferryError('network', `POP3 session with ${this.where} ended`, { retryable: true }));
    if (r.status !== '+OK') {
      throw new MailferryError('protocol', `${this.where} could not remove the deleted messages: ${printable(r.text)}`);
    }
  }

  /** Drop the connection without QUIT (the server then deletes nothing). */
  destroy(err?: MailferryError): void {
    this.fail(err ?? new MailferryError('network', `connection to ${this.where} closed`, { retryable: true }));
  }

  // --- session setup -------------------------------------------------------------------------

  private async capa(): Promise<void> {
    this.capabilities.clear();
    const { reply, body } = await this.collect('CAPA');
    this.capaOk = reply.status === '+OK';
    if (!this.capaOk) return;
    for (const l of this.lines(body, 'CAPA')) {
      const [word = '', ...args] = l.trim().split(/\s+/);
      if (word !== '') this.capabilities.set(word.toUpperCase(), args);
    }
  }

  /** RFC 2595 §4: STLS, then TLS on the same socket, then CAPA again (what was said in clear is forgotten). */
  private async starttls(): Promise<void> {
    const missing = (): MailferryError =>
      new MailferryError('tls', `${this.where} does not offer STLS; refusing to log in in plain text`);
    if (this.capaOk && !this.capabilities.has('STLS')) throw missing();
    const r = await this.command('STLS', false);
    if (r.status !== '+OK') throw missing();
    if (this.failure !== undefined) {
      // Bytes after the STLS reply, before the handshake: a plain-text injection (CVE-2011-0411 style).
      throw new MailferryError('tls', `${this.where} sent data after its STLS reply; refusing to continue`, { cause: this.failure });
    }
    const plain = this.sock;
    this.detach(plain);
    plain.on('error', () => undefined); // surfaces through the TLS socket
    const secure = tls.connect({ socket: plain, host: this.o.host, ...tlsOptions(this.o) });
    secure.setTimeout(this.o.connectTimeoutMs ?? 30_000);
    this.attach(secure);
    await this.until(once(secure, 'secureConnect'));
    await this.capa();
  }

  private async login(): Promise<void> {
    const sasl = (this.capabilities.get('SASL') ?? []).map((m) => m.toUpperCase());
    let r: Reply;
    const token = this.o.accessToken;
    if (token !== undefined) {
      r = await this.authOAuth2(sasl, token);
    } else if (sasl.includes('PLAIN')) {
      r = await this.authPlain();
    } else if (!this.capaOk || this.capabilities.has('USER')) {
      r = await this.send(`USER ${this.o.user}`);
      if (r.status === '+OK') r = await this.send(`PASS ${this.o.password ?? ''}`, { secret: true });
    } else {
      throw new MailferryError('auth', `${this.where} offers no login method mailferry supports (SASL: ${sasl.join(' ') || 'none'}; no USER)`);
    }
    if (r.status !== '+OK') throw this.loginError(r);
  }

  /** RFC 4616 PLAIN; a challenge PLAIN cannot answer is cancelled with "*" (RFC 5034 §4). */
  private authPlain(): Promise<Reply> {
    const ir = Buffer.from(`\0${this.o.user}\0${this.o.password ?? ''}`, 'utf8').toString('base64');
    return this.sasl('PLAIN', ir, '*');
  }

  /**
   * RFC 7628 OAUTHBEARER (GS2 header, `auth=Bearer`, ^A separators) where offered, else Google's
   * XOAUTH2. A refused token gets a "+ <base64 JSON error>" challenge, answered with ^A (RFC 7628
   * §3.2.3) or, for XOAUTH2, an empty line; then the server says -ERR.
   */
  private authOAuth2(sasl: string[], token: string): Promise<Reply> {
    if (sasl.includes('OAUTHBEARER')) {
      const gs2 = `n,a=${this.o.user.replace(/=/g, '=3D').replace(/,/g, '=2C')},`;
      const ir = `${gs2}\x01host=${this.o.host}\x01port=${this.o.port}\x01auth=Bearer ${token}\x01\x01`;
      return this.sasl('OAUTHBEARER', Buffer.from(ir, 'utf8').toString('base64'), Buffer.from('\x01').toString('base64'));
    }
    if (sasl.includes('XOAUTH2')) {
      const ir = `user=${this.o.user}\x01auth=Bearer ${token}\x01\x01`;
      return this.sasl('XOAUTH2', Buffer.from(ir, 'utf8').toString('base64'), '');
    }
    throw new NoOAuth2Login(this.where, sasl);
  }

  /**
   * RFC 5034 §4 AUTH with an initial response, inline unless that makes the line longer than 255
   * octets; a further challenge is answered with `cancel`.
   */
  private async sasl(mech: string, ir: string, cancel: string): Promise<Reply> {
    const answer = (x: Reply): Promise<Reply> | Reply => (x.status === '+' ? this.send(cancel, { secret: true }) : x);
    if (`AUTH ${mech} ${ir}`.length <= 255) return answer(await this.send(`AUTH ${mech} ${ir}`, { secret: true, continuation: true }));
    const r = await this.send(`AUTH ${mech}`, { continuation: true });
    if (r.status !== '+') return r;
    return answer(await this.send(ir, { secret: true, continuation: true }));
  }

  private loginError(r: Reply): MailferryError {
    const said = printable(r.text);
    switch (r.code) {
      case 'IN-USE':
        return new MailferryError('network', `mailbox locked by another session at ${this.where} ([IN-USE] ${said}); close the other mail client and rerun`, {
          retryable: true,
        });
      case 'LOGIN-DELAY':
        return new MailferryError('network', `${this.where} allows a login only every few minutes ([LOGIN-DELAY] ${said}); rerun later`);
      case 'SYS/TEMP':
        return new MailferryError('network', `${this.where} has a temporary problem: ${said}`, { retryable: true });
      case 'SYS/PERM':
        return new MailferryError('protocol', `${this.where} refused the session: ${said}`);
      default:
        return new MailferryError('auth', `login refused by ${this.where}: wrong user name or password`);
    }
  }

  // --- commands -------------------------------------------------------------------------------

  /** Queue an expected reply without sending anything (the greeting). */
  private expect(): Promise<Reply> {
    return this.queue(undefined, {});
  }

  private send(line: string, opts: SendOptions = {}): Promise<Reply> {
    return this.queue(line, opts);
  }

  private queue(line: string | undefined, opts: SendOptions): Promise<Reply> {
    const d = deferred<Reply>();
    if (this.failure !== undefined) {
      d.reject(this.failure);
      return d.promise;
    }
    this.reader.expect({
      multi: opts.multi ?? false,
      deadlineMs: opts.deadlineMs ?? (opts.multi === true ? this.idleMs * LISTING_TURNS : this.idleMs),
      onReply: (r) => {
        this.o.debug?.(`S: ${r.status}${r.code === undefined ? '' : ` [${r.code}]`} ${printable(r.text)}`);
        if (r.status === '+' && opts.continuation !== true) {
          const err = this.protocolError(`unexpected continuation after ${line?.split(' ')[0] ?? 'connect'}`);
          d.reject(err);
          queueMicrotask(() => this.fail(err));
          return undefined;
        }
        d.resolve(r);
        return r.status === '+OK' && opts.multi === true ? opts.body?.(r) : undefined;
      },
      onError: (e) => d.reject(e),
    });
    if (line !== undefined) {
      this.o.debug?.(`C: ${opts.secret === true ? redacted(line) : line}`);
      this.sock.write(`${line}\r\n`);
    }
    return d.promise;
  }

  /** A single-line command that must succeed. */
  private async command(line: string, must = true): Promise<Reply> {
    const r = await this.send(line);
    if (must && r.status !== '+OK') throw this.commandError(line, r);
    return r;
  }

  /** A multi-line command whose body is collected into a Buffer. */
  private async collect(line: string): Promise<{ reply: Reply; body: Buffer }> {
    const target = new BufferBody(undefined, LISTING_LIMIT, `reply to ${line}`, 'protocol');
    const reply = await this.send(line, { multi: true, body: () => target });
    if (reply.status !== '+OK') return { reply, body: Buffer.alloc(0) };
    return { reply, body: await target.result.promise };
  }

  private commandError(what: string, r: Reply): MailferryError {
    const verb = what.split(' ')[0] ?? what;
    if (r.code === 'SYS/TEMP') {
      return new MailferryError('network', `${this.where}: ${verb} failed for now: ${printable(r.text)}`, { retryable: true });
    }
    return new MailferryError('protocol', `${this.where}: ${what} failed: ${printable(r.text)}`);
  }

  private protocolError(what: string): MailferryError {
    return new MailferryError('protocol', `${this.where}: ${what}`);
  }

  // --- socket ---------------------------------------------------------------------------------

  /** Backpressure hooks for StreamBody. */
  private readonly flow: Flow = {
    pause: (): void => {
      if (this.paused) return;
      this.paused = true;
      this.pausedAt = Date.now();
      this.sock.pause();
      this.sock.setTimeout(0); // a slow reader is not a silent server
    },
    resume: (): void => {
      if (!this.paused) return;
      this.paused = false;
      this.reader.extend(Date.now() - this.pausedAt);
      this.sock.setTimeout(this.idleMs);
      this.sock.resume();
    },
    abandon: (): void => {
      this.fail(new MailferryError('network', `message stream from ${this.where} closed before its end`, { retryable: true }));
    },
  };

  /** Resolves with `p`, or rejects as soon as the connection fails. */
  private until<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.failed.promise]);
  }

  private mapError(e: unknown): MailferryError {
    if (e instanceof MailferryError) return e;
    // A server that is shutting the session down (a kick, a timeout) says so before closing:
    // treat it as the dropped connection it is, so the batch is retried on a new session.
    if (e instanceof Pop3Unsolicited) {
      return new MailferryError('network', `connection to ${this.where} closed by the server`, { retryable: true });
    }
    if (e instanceof Pop3ProtocolError) return this.protocolError(e.message);
    const net = mapNetError(e, this.where, undefined, this.connecting ? this.portHint : {});
    if (net !== undefined) return net;
    const code = errnoCode(e);
    if (code !== undefined) return new MailferryError('network', `${this.where}: ${code}`, { cause: e, retryable: true });
    return new MailferryError('protocol', `${this.where}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }

  /** The session is over: everything waiting gets `err`, the body being read `bodyErr`. */
  private fail(err: MailferryError, bodyErr: MailferryError = err): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    clearInterval(this.watch);
    this.sock.destroy();
    this.failed.reject(err);
    this.reader.failAll(err, bodyErr);
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.reader.feed(chunk);
    } catch (e: unknown) {
      if (e instanceof MailferryError && e.kind === 'message') {
        // A body over its limit: that message is refused, and since the rest of it cannot be
        // skipped, the session is dropped (nothing more is read); other commands are retried.
        this.fail(new MailferryError('network', `${this.where}: session dropped: ${e.message}`, { retryable: true }), e);
      } else this.fail(this.mapError(e));
    }
  };

  private readonly onError = (e: Error): void => {
    this.fail(this.mapError(e));
  };

  private readonly onClose = (): void => {
    this.fail(new MailferryError('network', `connection to ${this.where} lost (closed by the server)`, { retryable: true }));
  };

  private readonly onTimeout = (): void => {
    // An idle session with nothing outstanding may stay idle; the server ends it if it wants to.
    if (!this.connecting && this.reader.pending === 0) return;
    const ms = this.connecting ? (this.o.connectTimeoutMs ?? 30_000) : this.idleMs;
    const hint = this.connecting && this.portHint.portHint !== undefined ? `; ${this.portHint.portHint}` : '';
    this.fail(new MailferryError('network', `no answer from ${this.where} for ${ms / 1000} s${hint}`, { retryable: true }));
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

function tlsOptions(o: Pop3ClientOptions): tls.ConnectionOptions {
  return {
    rejectUnauthorized: o.insecure !== true,
    // SNI only for names (RFC 6066 §3); the certificate is checked against `host` either way.
    ...(net.isIP(o.host) === 0 ? { servername: o.host } : {}),
    ...(o.ca === undefined ? {} : { ca: o.ca }),
  };
}
