import { tcpProxy } from './proxy.js';

/**
 * A proxy (proxy.ts) in front of a plain IMAP port that plays a server ending a session (Dovecot
 * on `doveadm kick`, Gmail and Microsoft on session expiry): once the trigger is reached, it lets
 * the server's response in progress finish (its line, and any literal in it, up to the CRLF that
 * ends the response), sends `* BYE <text>` in place of whatever the server says next, and closes
 * the connection `delayMs` later (RFC 9051 7.1.5: the server sends BYE, then closes). Nothing more
 * passes either way on that connection in between: the client's commands after the BYE go
 * nowhere. It acts once; later connections are forwarded untouched.
 *
 * Triggers (the first one reached acts): `afterBytes`, the server's bytes counted over all
 * connections in the order they arrive; `afterLine`, the `nth` response line (its last line when
 * it holds literals) that matches, e.g. the tagged OK of a UID FETCH.
 */
export interface FaultOptions {
  afterBytes?: number;
  afterLine?: RegExp;
  /** Which match of `afterLine` triggers (default 1). */
  nth?: number;
  delayMs: number;
  /** The BYE's text (default "shutting down"). */
  text?: string;
}

export interface FaultProxy {
  port: number;
  /** Server bytes forwarded so far (over all connections). */
  readonly bytes: number;
  /** Responses that matched `afterLine` so far. */
  readonly matched: number;
  /** Tagged responses (command completions) forwarded so far (over all connections). */
  readonly tagged: number;
  /** Whether the BYE was sent. */
  readonly fired: boolean;
  close(): Promise<void>;
}

/** A literal's size marker at the end of a line: `{123}`, `{123+}`, or literal8 `~{123}`. */
const LITERAL_AT_END = /\{(\d+)\+?\}\r\n$/;
/** A command's completion: a tagged OK, NO or BAD (not `*` untagged data, not a `+` continuation). */
export const TAGGED = /^[^*+\s]\S* (OK|NO|BAD)\b/i;

export async function faultProxy(targetPort: number, opts: FaultOptions): Promise<FaultProxy> {
  let bytes = 0;
  let fired = false;
  let matches = 0;
  let tagged = 0;
  const bye = Buffer.from(`* BYE ${opts.text ?? 'shutting down'}\r\n`);
  const proxy = await tcpProxy(targetPort, (client, upstream, drop) => {
    let cut = false;
    /** Bytes of a literal still to come from the server. */
    let literalLeft = 0;
    /** The current response line so far (bytes since the last CRLF or literal), at most 4 KiB kept. */
    let line = '';
    client.on('data', (d: Buffer) => {
      if (!cut) upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (cut) return;
      let pos = 0;
      while (pos < d.length) {
        if (literalLeft > 0) {
          const take = Math.min(literalLeft, d.length - pos);
          pos += take;
          literalLeft -= take;
          continue;
        }
        const nl = d.indexOf(0x0a, pos);
        if (nl === -1) {
          line = (line + d.toString('latin1', pos)).slice(-4096);
          pos = d.length;
          break;
        }
        line = (line + d.toString('latin1', pos, nl + 1)).slice(-4096);
        pos = nl + 1;
        const literal = LITERAL_AT_END.exec(line);
        if (literal !== null) {
          literalLeft = Number(literal[1]);
          line = '';
          continue;
        }
        // A response ends here.
        const ended = line;
        line = '';
        if (fired) continue;
        if (TAGGED.test(ended)) tagged++;
        if (opts.afterLine?.test(ended) === true) matches++;
        const reached = (opts.afterBytes !== undefined && bytes + pos >= opts.afterBytes) || matches >= (opts.nth ?? 1);
        if (!reached) continue;
        fired = true;
        cut = true;
        bytes += pos;
        client.write(d.subarray(0, pos));
        client.write(bye);
        // A FIN after the BYE; both sides are dropped once the client closes too (proxy.ts), or 1 s on.
        const end = (): void => {
          client.end();
          setTimeout(drop, 1000).unref();
        };
        if (opts.delayMs <= 0) end();
        else setTimeout(end, opts.delayMs).unref();
        return;
      }
      bytes += d.length;
      client.write(d);
    });
  });
  return {
    port: proxy.port,
    get bytes() {
      return bytes;
    },
    get matched() {
      return matches;
    },
    get tagged() {
      return tagged;
    },
    get fired() {
      return fired;
    },
    close: () => proxy.close(),
  };
}
