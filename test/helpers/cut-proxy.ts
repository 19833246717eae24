import { tcpProxy } from './proxy.js';

/**
 * A proxy (proxy.ts) that, the first time the server's bytes contain `cutAt`, closes both sides
 * without passing those bytes on, as a connection dropped after the server acted but before the
 * client heard the answer. Later connections are forwarded untouched.
 */
export interface CutProxy {
  port: number;
  /** How many connections were cut (0 or 1). */
  readonly cuts: number;
  close(): Promise<void>;
}

export async function cutProxy(targetPort: number, cutAt: string): Promise<CutProxy> {
  let cuts = 0;
  const proxy = await tcpProxy(targetPort, (client, upstream, drop) => {
    client.on('data', (d: Buffer) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      if (cuts === 0 && d.includes(cutAt)) {
        cuts++;
        drop();
        return;
      }
      client.write(d);
    });
  });
  return {
    port: proxy.port,
    get cuts() {
      return cuts;
    },
    close: () => proxy.close(),
  };
}

/**
 * A poor link (proxy.ts): every connection (or the first `times` opened) is dropped once `cutAfter` bytes of the server's have
 * passed on it (the byte that reaches the limit is not passed on), wherever that falls (mid-literal
 * included); `bytesPerSecond` paces the server's bytes, per connection. The FETCH commands the
 * client sends are recorded, one entry per connection, so a test can see what each connection asked for;
 * `dropOn` drops a connection when the client sends a given command (a server that dies on one message).
 */
export interface LinkOptions {
  cutAfter?: number;
  /** Only the first this many connections opened are cut (default: every one). */
  times?: number;
  /** A client command line for which the connection is dropped instead (counted as a cut). */
  dropOn?: (line: string) => boolean;
  bytesPerSecond?: number;
}

export interface LinkProxy {
  port: number;
  /** Connections dropped at `cutAfter`. */
  readonly cuts: number;
  /** Server bytes passed on, over all connections. */
  readonly bytes: number;
  /** The FETCH command lines of each connection, in the order the connections were opened. */
  readonly fetches: readonly (readonly string[])[];
  close(): Promise<void>;
}

export async function linkProxy(targetPort: number, opts: LinkOptions): Promise<LinkProxy> {
  let cuts = 0;
  let bytes = 0;
  const fetches: string[][] = [];
  const proxy = await tcpProxy(targetPort, (client, upstream, drop) => {
    const mine: string[] = [];
    fetches.push(mine);
    let line = '';
    client.on('data', (d: Buffer) => {
      line = (line + d.toString('latin1')).slice(-4096);
      let nl: number;
      while ((nl = line.indexOf('\n')) >= 0) {
        const l = line.slice(0, nl).trim();
        line = line.slice(nl + 1);
        if (/^\S+ (UID )?FETCH /i.test(l)) mine.push(l);
        if (opts.dropOn?.(l) === true) {
          cuts++;
          drop();
          return;
        }
      }
      upstream.write(d);
    });
    let passed = 0;
    const cutting = fetches.length <= (opts.times ?? Infinity);
    upstream.on('data', (d: Buffer) => {
      const room = opts.cutAfter === undefined || !cutting ? d.length : opts.cutAfter - passed;
      const out = room < d.length ? d.subarray(0, Math.max(0, room)) : d;
      passed += out.length;
      bytes += out.length;
      client.write(out);
      if (out.length < d.length) {
        cuts++;
        drop();
        return;
      }
      if (opts.bytesPerSecond !== undefined) {
        upstream.pause();
        setTimeout(() => upstream.resume(), (1000 * d.length) / opts.bytesPerSecond).unref();
      }
    });
  });
  return {
    port: proxy.port,
    get cuts() {
      return cuts;
    },
    get bytes() {
      return bytes;
    },
    fetches,
    close: () => proxy.close(),
  };
}
