import net from 'node:net';
import tls from 'node:tls';
import { MailferryError, errnoCode } from '../domain/errors.js';
import { answeredInPlainText } from '../domain/net-errors.js';
import type { RemoteEndpoint } from '../endpoints/url.js';

/**
 * Which scheme a port speaks, told from its first bytes, so that `imaps://` to a STARTTLS port
 * and `imap://` to a TLS port (pop3s/pop3, smtps/smtp alike) stop within a second or two with
 * the address to use, instead of "certificate not trusted" or minutes of greeting time-outs.
 * IMAP, POP3 and SMTP servers speak first (RFC 9051 §7.1, RFC 1939 §4, RFC 5321 §3.1); a TLS
 * server says nothing until it gets a ClientHello, and then answers with a handshake record.
 *
 * - A TLS scheme against a plain port: the server's plain greeting reaches the TLS layer as a
 *   record, and OpenSSL fails the handshake (domain/net-errors.ts answeredInPlainText). `checkedConnect` then reads the
 *   greeting on a plain connection (2 s at most) and asks for the capabilities, to say whether
 *   the port offers STARTTLS (STLS), and throws that as a `tls` error (exit 5, not retried).
 * - A plain or STARTTLS scheme against a TLS port: the server stays silent and the client waits
 *   for a greeting. When a connection is not up after PROBE_AFTER_MS, a TLS handshake is tried
 *   on a second connection (certificate not checked: it only asks what the port speaks, and
 *   sends nothing else); a server that completes it or answers with a TLS alert speaks TLS, and
 *   the connection is dropped with that error. A plain server (one that greets slowly, or logs in
 *   slowly) answers the ClientHello in plain text and is left alone; one that has greeted on the
 *   driver's own connection already (where the driver can tell) is not probed at all.
 * - An endpoint whose connection came up once is not probed again in this process.
 */
/** How long a plain-text connection may wait for its greeting and login before the port is probed. */
export const PROBE_AFTER_MS = 1500;
const PROBE_MS = 2000;
const PROBE_BYTES = 16 << 10;

const NAMES = {
  imap: { name: 'IMAP', tls: 'imaps', plain: 'imap', upgrade: 'STARTTLS', tlsPort: 993, plainPort: 143 },
  pop3: { name: 'POP3', tls: 'pop3s', plain: 'pop3', upgrade: 'STLS', tlsPort: 995, plainPort: 110 },
  smtp: { name: 'SMTP', tls: 'smtps', plain: 'smtp', upgrade: 'STARTTLS', tlsPort: 465, plainPort: 587 },
} as const;

/**
 * What a failure to connect to `e` adds when its port is not the scheme's usual one (a refused
 * port or one that never answers is most often a wrong port): "imaps:// is usually port 993";
 * undefined on the usual port. The drivers pass it to domain/net-errors.ts (portHint) while they
 * connect.
 */
export function usualPort(e: RemoteEndpoint): string | undefined {
  const n = NAMES[e.kind];
  const [scheme, port] = e.tls === 'tls' ? [n.tls, n.tlsPort] : [n.plain, n.plainPort];
  return e.port === port ? undefined : `${scheme}:// is usually port ${port}`;
}

/** Endpoints whose connection came up: their scheme is right. */
const proven = new Set<string>();

const key = (e: RemoteEndpoint): string => `${e.kind} ${e.tls} ${e.host} ${e.port}`;
const hostPort = (e: RemoteEndpoint): string => `${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
const address = (e: RemoteEndpoint, scheme: string): string => `${scheme}://${e.user === '' ? '' : `${e.user}@`}${hostPort(e)}`;

export interface ConnectCheck {
  /** Ends the connection attempt when the port turns out to speak TLS (`connecting` then rejects). */
  drop: (err: MailferryError) => void;
  /** The socket's code of a failure, when the library moved it (nodemailer: `originalCode`). */
  code?: (err: unknown) => string | undefined;
  /** Whether the server has spoken on the driver's connection: then it is plain, and not probed. */
  greeted?: () => boolean;
}

/**
 * `connecting` (a driver's connect, greeting and login), with the port's scheme checked as above;
 * rejects with the scheme's error when the port speaks the other one.
 */
export async function checkedConnect<T>(e: RemoteEndpoint, connecting: Promise<T>, check: ConnectCheck): Promise<T> {
  const { drop, code, greeted } = check;
  if (e.tls === 'tls') {
    try {
      const done = await connecting;
      proven.add(key(e));
      return done;
    } catch (err: unknown) {
      throw answeredInPlainText(err, code?.(err)) ? await notTls(e, err) : err;
    }
  }
  if (proven.has(key(e))) return connecting;
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  const verdict = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      if (greeted?.() === true) return;
      void speaksTls(e.host, e.port).then((yes) => {
        if (!yes || settled) return;
        const err = new MailferryError('tls', `${hostPort(e)} speaks TLS from the first byte: use ${address(e, NAMES[e.kind].tls)}`);
        reject(err); // first, so that the race ends with it and not with the error the drop causes
        drop(err);
      });
    }, PROBE_AFTER_MS);
  });
  try {
    const done = await Promise.race([connecting, verdict]);
    proven.add(key(e));
    return done;
  } finally {
    settled = true;
    clearTimeout(timer);
  }
}

/** The error for a TLS scheme on a port that answered in plain text, with what the port offers. */
async function notTls(e: RemoteEndpoint, cause: unknown): Promise<MailferryError> {
  const n = NAMES[e.kind];
  const heard = await plainGreeting(e);
  const other = `the TLS port (${n.tlsPort})`;
  let text: string;
  if (heard === undefined) text = `${hostPort(e)} answers in plain text, not TLS: check the port (${n.tlsPort} for ${n.tls}://)`;
  else if (heard.upgrade === true) text = `${hostPort(e)} speaks plain ${n.name} with ${n.upgrade}, not TLS: use ${address(e, n.plain)} (${n.upgrade}) or ${other}`;
  else if (heard.upgrade === false) text = `${hostPort(e)} speaks plain ${n.name} without ${n.upgrade}, not TLS: use ${other}`;
  else text = `${hostPort(e)} speaks plain ${n.name}, not TLS: use ${address(e, n.plain)} (${n.upgrade}) or ${other}`;
  return new MailferryError('tls', text, { cause });
}

/**
 * Does the port complete (or refuse with an alert) a TLS handshake? false when it answers in plain
 * text or not at all within PROBE_MS.
 */
function speaksTls(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tls.connect({ host, port, rejectUnauthorized: false, ...(net.isIP(host) === 0 ? { servername: host } : {}) });
    const done = (yes: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(yes);
    };
    const timer = setTimeout(() => done(false), PROBE_MS);
    sock.once('secureConnect', () => done(true));
    sock.once('error', (err: unknown) => {
      const code = errnoCode(err) ?? '';
      done(code.startsWith('ERR_SSL_') && code.includes('ALERT'));
    });
  });
}

/** What the question for the capabilities is, and when its answer is complete. */
const CAPABILITIES = {
  imap: { ask: 'm1 CAPABILITY\r\n', end: /^m1 /m, quit: 'm2 LOGOUT\r\n' },
  pop3: { ask: 'CAPA\r\n', end: /^(\.|-ERR.*)\r\n/m, quit: 'QUIT\r\n' },
  smtp: { ask: 'EHLO mailferry\r\n', end: /^\d{3} /m, quit: 'QUIT\r\n' },
} as const;

/** A greeting of the protocol, and its last line (SMTP's may have several, RFC 5321 §4.2.1). */
const GREETING = {
  imap: { is: /^\* (OK|PREAUTH)/, end: /\r\n/ },
  pop3: { is: /^\+OK/, end: /\r\n/ },
  smtp: { is: /^220[ -]/, end: /^220 .*\r\n/m },
} as const;

/**
 * A plain connection to the port: its greeting, and whether its capabilities offer the upgrade
 * (STARTTLS, STLS; unknown when they do not come within PROBE_MS). undefined when it does not
 * greet in this protocol within PROBE_MS.
 */
function plainGreeting(e: RemoteEndpoint): Promise<{ upgrade?: boolean } | undefined> {
  const q = CAPABILITIES[e.kind];
  const upgrade = new RegExp(`\\b${NAMES[e.kind].upgrade}\\b`, 'i');
  return new Promise((resolve) => {
    const sock = net.connect({ host: e.host, port: e.port });
    let text = '';
    let greeted = -1;
    const done = (r: { upgrade?: boolean } | undefined): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done(greeted < 0 ? undefined : {}), PROBE_MS);
    sock.on('error', () => done(undefined));
    sock.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.length > PROBE_BYTES) return done(undefined);
      if (greeted < 0) {
        const g = GREETING[e.kind];
        if (text.includes('\r\n') && !g.is.test(text)) return done(undefined);
        const end = g.end.exec(text);
        if (end === null) return;
        greeted = end.index + end[0].length;
        // An IMAP greeting may carry the capabilities already (RFC 9051 §7.1: [CAPABILITY ...]).
        if (e.kind === 'imap' && upgrade.test(text.slice(0, greeted))) {
          sock.write(q.quit);
          return done({ upgrade: true });
        }
        sock.write(q.ask);
        return;
      }
      const answer = text.slice(greeted);
      if (!q.end.test(answer)) return;
      sock.write(q.quit);
      done({ upgrade: upgrade.test(answer) });
    });
  });
}
