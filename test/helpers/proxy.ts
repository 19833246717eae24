import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a real server on loopback, for fault injection. `wire` gets
 * each client connection with its upstream and wires the bytes both ways (passing them on, holding
 * them back, or answering itself); `drop` closes both sides. Closing either side closes the other.
 */
export interface Proxy {
  port: number;
  close(): Promise<void>;
}

export async function tcpProxy(targetPort: number, wire: (client: net.Socket, upstream: net.Socket, drop: () => void) => void): Promise<Proxy> {
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
    wire(client, upstream, drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy: no port');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
