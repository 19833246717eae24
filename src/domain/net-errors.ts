import { MailferryError, errnoCode } from './errors.js';

/**
 * What the socket, TLS and DNS layers under every driver throw, as our typed errors. Each driver's
 * one error mapper (drivers/imap/errors.ts, drivers/pop3/client.ts, drivers/smtp/transport.ts)
 * hands its errors here with its library's own codes for a lost connection, so "is this a lost
 * connection" has one answer per driver, and the same one for the codes all protocols share.
 * Branches on codes only, never on message text.
 */
/** The certificate verdicts Node reports (OpenSSL's X509_V_ERR names, as crypto_common.cc spells them). */
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * OpenSSL's verdicts on a first reply that is no TLS record: a plain-text greeting read as one
 * (a TLS scheme on a plain port; drivers/scheme.ts says which scheme the port speaks).
 */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_UNKNOWN_PROTOCOL']);

/**
 * The TLS handshake got plain text back: the code of `e`, or of the error it wraps, or `code` when
 * the library moved it (nodemailer keeps it in `originalCode`).
 */
export function answeredInPlainText(e: unknown, code?: string): boolean {
  const c = code ?? errnoCode(e) ?? (e instanceof Error ? errnoCode(e.cause) : undefined);
  return c !== undefined && NOT_TLS.has(c);
}

/** A connection not up in time: the socket's code, and imapflow's (whose CONNECT_TIMEOUT covers every phase of its connect). */
const CONNECT_TIMEOUT = new Set(['ETIMEDOUT', 'CONNECT_TIMEOUT', 'GREETING_TIMEOUT']);

/** Socket codes that mean the connection went away under us: a new connection may succeed. */
const LOST = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ETIMEOUT', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN']);

export function isTlsCode(code: string): boolean {
  return TLS_CODES.has(code) || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS');
}

/** A connection that went away under a command: retried on a new one. */
export function connectionLost(where: string, code?: string, cause?: unknown): MailferryError {
  const why = code === undefined ? '' : ` (${code})`;
  return new MailferryError('network', `connection to ${where} lost${why}`, { retryable: true, cause });
}

export interface NetErrorOptions {
  /** The socket's code when the library moved it (nodemailer keeps it in `originalCode`). */
  code?: string;
  /**
   * Given by a driver while it connects, on a port that is not its scheme's usual one
   * (drivers/scheme.ts usualPort): added to a refused connection and to a connection not up in time,
   * e.g. "connection refused by host:9993; imaps:// is usually port 993".
   */
  portHint?: string;
  /** What to tell the user about an untrusted certificate (default: --ca FILE or --tls-insecure). */
  tlsHint?: string;
}

/**
 * The error of a socket, TLS or DNS layer, or undefined when `e` carries none of their codes.
 * `extraLost`: the driver's own codes for a lost connection (imapflow's NoConnection, nodemailer's
 * ESOCKET, ...).
 */
export function mapNetError(
  e: unknown,
  where: string,
  extraLost: ReadonlySet<string> = new Set(),
  opts: NetErrorOptions = {},
): MailferryError | undefined {
  if (e instanceof MailferryError) return e;
  const code = opts.code ?? errnoCode(e);
  if (code === undefined) return undefined;
  const hint = opts.portHint === undefined ? '' : `; ${opts.portHint}`;
  if (code === 'ECONNREFUSED') return new MailferryError('network', `connection refused by ${where}${hint}`, { cause: e });
  if (hint !== '' && CONNECT_TIMEOUT.has(code)) {
    return new MailferryError('network', `no connection to ${where} in time (${code})${hint}`, { retryable: true, cause: e });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new MailferryError('network', `unknown host in ${where}`, { cause: e });
  if (NOT_TLS.has(code)) return new MailferryError('tls', `${where} answered the TLS handshake in plain text (${code})`, { cause: e });
  if (isTlsCode(code)) {
    const hint = opts.tlsHint ?? 'pass --ca FILE to trust it, or --tls-insecure';
    return new MailferryError('tls', `TLS certificate of ${where} is not trusted (${code}); ${hint}`, { cause: e });
  }
  if (LOST.has(code) || extraLost.has(code)) return connectionLost(where, code, e);
  return undefined;
}
