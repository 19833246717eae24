/**
 * An emulated WAN link on loopback: a TCP proxy on 127.0.0.1 in front of a server port that
 * delays every chunk by `delayMs` in each direction (one way; a round trip costs 2x), in order,
 * and optionally caps each connection's throughput per direction (`bytesPerS`).
 *
 * The link model: a chunk that arrives at time t leaves the sender side when the link is free
 * (after the previous chunk's `length / bytesPerS`), and is delivered `delayMs` later. Each
 * direction of each connection is one FIFO queue with one timer armed for its head (never a timer
 * per chunk or byte), so order is kept and a burst costs one timer. Reading is paused while more
 * than `highWater` bytes wait in a queue, so a fast sender cannot fill memory.
 *
 * The proxy also counts, per connection, what a latency-bound client pays for: its *turns*
 * (bursts of client bytes sent after the server last spoke: the round trips it waited on) and the
 * IMAP commands it sent, by verb (a FETCH of bodies counted apart from a FETCH of metadata).
 * Counting assumes IMAP command lines (CRLF-ended, a tag then the verb); other bytes are relayed
 * untouched either way.
 */
import net from 'node:net';

export interface WanOptions {
  /** the server port on 127.0.0.1 */
  targetPort: number;
  /** one-way delay per chunk, ms */
  delayMs: number;
  /** per-connection, per-direction throughput cap, bytes/s (none: only the delay) */
  bytesPerS?: number;
  /** pause reading a side while this many bytes wait for delivery (default 4 MiB) */
  highWater?: number;
}

export interface ConnectionStats {
  /** client bursts that followed server bytes (or the greeting): round trips the client waited on */
  turns: number;
  /** IMAP commands by verb (`UID FETCH body`, `UID FETCH meta`, `SELECT`, ...) */
  commands: Record<string, number>;
  /** per turn, the verbs of the commands it carried, joined by '+' ('' for bytes that are no command: literals, SASL) */
  turnLog: string[];
  bytesUp: number;
  bytesDown: number;
}

export interface WanProxy {
  port: number;
  /** one entry per connection accepted so far, in order */
  readonly connections: ConnectionStats[];
  close(): Promise<void>;
}

interface Queued {
  due: number;
  chunk: Buffer;
}

/** One direction of one connection: a FIFO released by a single timer. */
class DelayLine {
  private readonly queue: Queued[] = [];
  private head = 0;
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  /** when the emulated link finishes sending the last chunk queued */
  private linkFree = 0;

  constructor(
    private readonly from: net.Socket,
    private readonly to: net.Socket,
    private readonly delayMs: number,
    private readonly bytesPerS: number | undefined,
    private readonly highWater: number,
  ) {}

  push(chunk: Buffer): void {
    const now = performance.now();
    let sent = now;
    if (this.bytesPerS !== undefined) {
      sent = Math.max(now, this.linkFree) + (chunk.length * 1000) / this.bytesPerS;
      this.linkFree = sent;
    }
    this.queue.push({ due: sent + this.delayMs, chunk });
    this.queued += chunk.length;
    if (this.queued > this.highWater) this.from.pause();
    if (this.timer === undefined) this.arm();
  }

  private arm(): void {
    const next = this.queue[this.head];
    if (next === undefined) return;
    this.timer = setTimeout(() => this.release(), Math.max(0, next.due - performance.now()));
  }

  private release(): void {
    this.timer = undefined;
    const now = performance.now();
    // Everything due (setTimeout may fire late: deliver all that is due at once, in order).
    for (let q = this.queue[this.head]; q !== undefined && q.due <= now + 0.5; q = this.queue[this.head]) {
      this.head++;
      this.queued -= q.chunk.length;
      if (!this.to.destroyed) this.to.write(q.chunk);
    }
    if (this.head > 1024) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.queued <= this.highWater && this.from.isPaused()) this.from.resume();
    this.arm();
  }

  /** The queue drained: call `done` (at once when empty). */
  drain(done: () => void): void {
    if (this.queue[this.head] === undefined) done();
    else setTimeout(() => this.drain(done), 5);
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Counts the IMAP commands in the client's bytes, line by line. */
function commandCounter(stats: ConnectionStats): (chunk: Buffer) => void {
  let pending = '';
  let literal = 0;
  return (chunk) => {
    pending += chunk.toString('latin1');
    for (;;) {
      if (literal > 0) {
        const skip = Math.min(literal, pending.length);
        pending = pending.slice(skip);
        literal -= skip;
        if (literal > 0) return;
      }
      const nl = pending.indexOf('\n');
      if (nl < 0) return;
      const line = pending.slice(0, nl + 1);
      pending = pending.slice(nl + 1);
      const lit = /\{(\d+)\+?\}\r?\n$/.exec(line);
      if (lit?.[1] !== undefined) literal = Number(lit[1]);
      const m = /^\S+ ((?:UID )?[A-Z]+)/i.exec(line);
      if (m?.[1] === undefined) continue;
      let verb = m[1].toUpperCase();
      if (verb.endsWith('FETCH')) verb += /BODY(\.PEEK)?\[|RFC822[ )]|BINARY/i.test(line) ? ' body' : ' meta';
      stats.commands[verb] = (stats.commands[verb] ?? 0) + 1;
      const last = stats.turnLog.length - 1;
      if (last >= 0) stats.turnLog[last] = stats.turnLog[last] === '' ? verb : `${stats.turnLog[last]}+${verb}`;
    }
  };
}

export async function startWanProxy(opts: WanOptions): Promise<WanProxy> {
  const highWater = opts.highWater ?? 4 * 1024 * 1024;
  const sockets = new Set<net.Socket>();
  const connections: ConnectionStats[] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: opts.targetPort });
    sockets.add(client).add(upstream);
    // No Nagle on the proxy's own sockets: a delayed small write waiting for an ACK the peer
    // delays (40 ms on Linux) would add latency the link was not asked for.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const stats: ConnectionStats = { turns: 0, commands: {}, turnLog: [], bytesUp: 0, bytesDown: 0 };
    connections.push(stats);
    const up = new DelayLine(client, upstream, opts.delayMs, opts.bytesPerS, highWater);
    const down = new DelayLine(upstream, client, opts.delayMs, opts.bytesPerS, highWater);
    const count = commandCounter(stats);
    let serverSpokeLast = true;
    client.on('data', (chunk: Buffer) => {
      if (serverSpokeLast) {
        stats.turns++;
        stats.turnLog.push('');
      }
      serverSpokeLast = false;
      stats.bytesUp += chunk.length;
      count(chunk);
      up.push(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      serverSpokeLast = true;
      stats.bytesDown += chunk.length;
      down.push(chunk);
    });
    // A side that ends is ended on the other side once what it sent was delivered (as on a link).
    client.on('end', () => up.drain(() => upstream.end()));
    upstream.on('end', () => down.drain(() => client.end()));
    const drop = (): void => {
      up.stop();
      down.stop();
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', () => up.drain(drop));
    upstream.on('error', drop).on('close', () => down.drain(drop));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('wan-proxy: no port');
  return {
    port: address.port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
