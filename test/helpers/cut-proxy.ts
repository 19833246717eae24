import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a real server, for fault injection: it forwards both ways
 * and, the first time the server's bytes contain `cutAt`, closes both sides without passing those
 * bytes on, as a connection dropped after the server acted but before the client heard the answer.
 * Later connections are forwarded untouched.
 */
export interface CutProxy {
  port: number;
  /** How many connections were cut (0 or 1). */
  readonly cuts: number;
  close(): Promise<void>;
}

export async function cutProxy(targetPort: number, cutAt: string): Promise<CutProxy> {
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    sockets.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy: no port');
  return {
    port: address.port,
    get cuts() {
      return cuts;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
