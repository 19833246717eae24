/**
 * A fault-injecting proxy (proxy.ts) in front of a plain-text IMAP port (test-only): it
 * relays both ways, and answers the first `times` body fetches (`UID FETCH ... BODY.PEEK[]`)
 * itself with `reply` (e.g. `NO [THROTTLED] ...`) instead of passing them on, as a throttling
 * provider would. Dovecot cannot be made to say that, so this is how the real IMAP path is tested.
 */
import { tcpProxy } from './proxy.js';

export interface ThrottleProxy {
  port: number;
  /** How many fetches were answered with `reply`. */
  readonly injected: number;
  close(): Promise<void>;
}

export async function startThrottleProxy(targetPort: number, reply: string, times = 1): Promise<ThrottleProxy> {
  let injected = 0;
  const proxy = await tcpProxy(targetPort, (client, upstream) => {
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
  });
  return {
    port: proxy.port,
    get injected() {
      return injected;
    },
    close: () => proxy.close(),
  };
}
