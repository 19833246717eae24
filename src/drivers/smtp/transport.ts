import { format } from 'node:util';
import { createTransport } from 'nodemailer';
import { smtpAuth, type Credential } from '../../auth/credentials.js';
import { MailferryError } from '../../domain/errors.js';
import { mapNetError } from '../../domain/net-errors.js';
import type { RemoteEndpoint } from '../../endpoints/url.js';
import type { Logger } from '../../log/logger.js';
import { checkedConnect, usualPort } from '../scheme.js';

/**
 * The SMTP adapter: nodemailer stays in this file. One pooled connection (`maxConnections: 1`),
 * reused for every message and reopened by nodemailer when the relay drops it.
 *
 * - `send(envelope, raw)` hands nodemailer the message as `raw` with an explicit envelope, so it adds
 *   no header and composes nothing: the bytes go out as given, except for what SMTP DATA itself
 *   requires (RFC 5321 §2.3.8, §4.5.2): every line end becomes CRLF (bare LF and bare CR too), a
 *   final CRLF is added when the last line has none, and lines starting with "." are dot-stuffed
 *   (the relay removes the extra dot). A message already in CRLF form with a final CRLF, which is
 *   what an IMAP or POP3 server hands us, arrives byte for byte.
 * - The outcome of one message is a Reply: `accepted` with the relay's 250 text, or refused with the
 *   reply code (4xx: try again later; 5xx: this message will not go; RFC 5321 §4.2.1).
 * - Whatever concerns the session rather than the message throws a MailferryError: AUTH refused
 *   (`auth`, exit 4), TLS or certificate failure, no STARTTLS on smtp:// (`tls`, exit 5),
 *   connection refused or unknown host (`network`), a dropped connection, time-out or garbled
 *   session (`network`, retryable). Socket, TLS and DNS codes are judged by domain/net-errors.ts,
 *   with nodemailer's own codes for a lost session (SMTP_LOST) added here.
 * - TLS: `smtps://` is TLS from the first byte; `smtp://` requires STARTTLS (`requireTLS`) unless
 *   the TLS mode is `plain`, which never upgrades (and may send AUTH in clear: the user asked).
 *   Certificates are verified against the system CAs, or `ca`, unless `insecure`.
 * - AUTH with the endpoint's user and the credential (a password: PLAIN/LOGIN; an OAuth2 access
 *   token: XOAUTH2) only when the address names a user.
 */
export interface SmtpEnvelope {
  /** MAIL FROM; '' is the null reverse-path `<>`. */
  from: string;
  to: string;
}

export type Reply = { accepted: true; text: string } | { accepted: false; code: number; text: string; permanent: boolean };

export interface SmtpSender {
  send(envelope: SmtpEnvelope, raw: Buffer): Promise<Reply>;
  close(): void;
}

export interface SmtpTransportOptions {
  endpoint: RemoteEndpoint;
  /** What to log in with (AUTH PLAIN/LOGIN or XOAUTH2), used only when the endpoint names a user. */
  credential?: Credential;
  ca?: Buffer;
  insecure: boolean;
  log: Logger;
  debug: boolean;
}

/** nodemailer's codes for a session that went away under us (its ERROR_CODES): retried. */
const SMTP_LOST = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET']);

export function smtpSender(opts: SmtpTransportOptions): SmtpSender {
  const e = opts.endpoint;
  const where = `${e.tls === 'tls' ? 'smtps' : 'smtp'}://${e.host}:${e.port}`;
  // nodemailer logs `(entry, format, ...args)`; AUTH appears as a placeholder, never the password.
  const fwd = (_: unknown, m: unknown, ...a: unknown[]): void => opts.log.debug(`smtp: ${format(m, ...a)}`);
  const transport = createTransport({
    pool: true,
    maxConnections: 1,
    maxMessages: Infinity,
    host: e.host,
    port: e.port,
    secure: e.tls === 'tls',
    requireTLS: e.tls === 'starttls',
    ignoreTLS: e.tls === 'plain',
    tls: { rejectUnauthorized: !opts.insecure, ...(opts.ca === undefined ? {} : { ca: opts.ca }) },
    ...(e.user === '' || opts.credential === undefined ? {} : { auth: smtpAuth(e.user, opts.credential) }),
    connectionTimeout: 60_000,
    greetingTimeout: 60_000,
    socketTimeout: 300_000,
    logger: opts.debug ? { level: () => undefined, trace: fwd, debug: fwd, info: fwd, warn: fwd, error: fwd, fatal: fwd } : false,
    debug: opts.debug,
  });
  // An idle pooled connection that fails must not crash the process.
  transport.on('error', (err: unknown) => opts.log.debug(`${where}: ${err instanceof Error ? err.message : String(err)}`));
  return {
    async send(envelope, raw) {
      try {
        // The abort closes the connection this message waits for (a TLS port never greets).
        const abort = new AbortController();
        const sending = transport.sendMail({ envelope: { from: envelope.from, to: [envelope.to] }, raw, signal: abort.signal });
        const info = await checkedConnect(e, sending, { drop: () => abort.abort(), code: socketCode });
        return { accepted: true, text: oneLine(info.response) };
      } catch (err: unknown) {
        return replyOf(err, where, usualPort(e));
      }
    },
    close() {
      transport.close();
    },
  };
}

/**
 * A refusal of this message as a Reply; anything about the session as a MailferryError.
 * `portHint` (scheme.ts usualPort) is added to a refused connection or one not up in time.
 */
function replyOf(err: unknown, where: string, portHint?: string): Reply {
  if (err instanceof MailferryError) throw err;
  const o = (typeof err === 'object' && err !== null ? err : {}) as {
    code?: unknown;
    responseCode?: unknown;
    response?: unknown;
    command?: unknown;
    originalCode?: unknown;
    timeoutType?: unknown;
  };
  const code = typeof o.code === 'string' ? o.code : undefined;
  const responseCode = typeof o.responseCode === 'number' ? o.responseCode : undefined;
  const response = typeof o.response === 'string' ? oneLine(o.response) : undefined;
  const text = response ?? (err instanceof Error ? oneLine(err.message) : String(err));
  if (code === 'EAUTH' || code === 'ENOAUTH') throw new MailferryError('auth', `${where}: login refused: ${text}`, { cause: err });
  if (code === 'ETLS' || code === 'EREQUIRETLS' || o.command === 'STARTTLS') {
    const hint = o.command === 'STARTTLS' ? '; the relay offers no STARTTLS (--smtp-tls-mode plain sends in clear)' : '';
    throw new MailferryError('tls', `${where}: TLS failed: ${text}${hint}`, { cause: err });
  }
  if (responseCode !== undefined && responseCode >= 400 && responseCode < 600 && (code === 'EENVELOPE' || code === 'EMESSAGE' || code === 'EPROTOCOL' || code === 'ECONNECTION')) {
    // 421 closes the session but is a reply like any 4xx: the pool reconnects for the next try.
    return { accepted: false, code: responseCode, text, permanent: responseCode >= 500 && responseCode !== 503 };
  }
  if (code === 'EMESSAGE' || code === 'EENVELOPE') {
    // Refused before it was sent (larger than the relay's SIZE, an address nodemailer cannot send).
    return { accepted: false, code: 554, text, permanent: true };
  }
  const sys = socketCode(err);
  // nodemailer's ETIMEDOUT is any of its time-outs; an idle session's (SOCKET_TIMEOUT) is no failure to connect.
  const connecting = portHint !== undefined && o.timeoutType !== 'SOCKET_TIMEOUT';
  const net = mapNetError(err, where, SMTP_LOST, {
    ...(sys === undefined ? {} : { code: sys }),
    ...(connecting ? { portHint } : {}),
    tlsHint: 'use --smtp-ca FILE for a private CA',
  });
  if (net !== undefined) throw net;
  // Anything else about the session (a garbled reply): a new connection may do better.
  throw new MailferryError('network', `${where}: ${text}`, { cause: err, retryable: true });
}

/** The socket's code, which nodemailer moves to `originalCode` (its own EDNS is a DNS failure). */
function socketCode(err: unknown): string | undefined {
  const o = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; originalCode?: unknown };
  if (typeof o.originalCode === 'string') return o.originalCode;
  return o.code === 'EDNS' ? 'ENOTFOUND' : typeof o.code === 'string' ? o.code : undefined;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
