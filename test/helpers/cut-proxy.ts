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
