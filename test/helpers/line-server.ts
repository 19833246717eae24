import net from 'node:net';

/**
 * A loopback server for scripted peers of line-based protocols (POP3, IMAP): on 127.0.0.1, a free
 * port, `greeting` sent on connect (or `greetAfterMs` later), then `handler` called with each CRLF-terminated line received.
 */
export interface LineServer {
  port: number;
  /** Every command line received, across connections. */
  received: string[];
  connections: number;
  close(): Promise<void>;
}

export type Handler = (line: string, sock: net.Socket) => void;

export async function lineServer(handler: Handler, greeting: string, opts: { greetAfterMs?: number } = {}): Promise<LineServer> {
  const sockets = new Set<net.Socket>();
  const fake: LineServer = { port: 0, received: [], connections: 0, close: async () => undefined };
  const server = net.createServer((sock) => {
    fake.connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    const greet = (): void => {
      if (!sock.destroyed) sock.write(`${greeting}\r\n`);
    };
    if (opts.greetAfterMs === undefined) greet();
    else setTimeout(greet, opts.greetAfterMs);
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        fake.received.push(line);
        handler(line, sock);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  fake.port = addr.port;
  fake.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return fake;
}

