/**
 * A fault-injecting TCP proxy on 127.0.0.1 in front of a plain-text IMAP port (test-only): it
 * relays both ways, and answers the first `times` body fetches (`UID FETCH ... BODY.PEEK[]`)
 * itself with `reply` (e.g. `NO [THROTTLED] ...`) instead of passing them on, as a throttling
 * provider would. Dovecot cannot be made to say that, so this is how the real IMAP path is tested.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface ThrottleProxy {
  port: number;
  /** How many fetches were answered with `reply`. */
  readonly injected: number;
  close(): Promise<void>;
}

export async function startThrottleProxy(target: { host: string; port: number }, reply: string, times = 1): Promise<ThrottleProxy> {
  let injected = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let pending = '';
    client.on('data', (chunk: Buffer) => {
      // Line by line (latin1 keeps bytes as they are); anything but a matched line goes through as
      // is. Everything a client sends ends in a line end (literals too: `{n}` then the rest of the
      // command line), so holding a partial line back never stalls it.
      pending += chunk.toString('latin1');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl + 1);
        pending = pending.slice(nl + 1);
        const m = /^(\S+) UID FETCH .*BODY\.PEEK\[\]/i.exec(line);
        if (m !== null && injected < times) {
          injected++;
          client.write(`${m[1]} ${reply}\r\n`);
        } else upstream.write(Buffer.from(line, 'latin1'));
      }
    });
    upstream.on('data', (d: Buffer) => client.write(d));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return {
    port: address.port,
    get injected() {
      return injected;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
