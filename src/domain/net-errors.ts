import { MailferryError, errnoCode } from './errors.js';

/**
 * What the socket, TLS and DNS layers under every driver throw, as our typed errors. Each driver
 * maps its library's own codes first (drivers/imap/errors.ts, drivers/smtp/transport.ts) and hands
 * the rest here, so "is this a lost connection" has one answer for the codes all protocols share.
 * Branches on codes only, never on message text.
 */
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
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

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

/**
 * The error of a socket, TLS or DNS layer, or undefined when `e` carries none of their codes.
 * `extraLost`: the driver's own codes for a lost connection (imapflow's NoConnection, ...).
 */
export function mapNetError(e: unknown, where: string, extraLost: ReadonlySet<string> = new Set()): MailferryError | undefined {
  if (e instanceof MailferryError) return e;
  const code = errnoCode(e);
  if (code === undefined) return undefined;
  if (code === 'ECONNREFUSED') return new MailferryError('network', `connection refused by ${where}`, { cause: e });
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new MailferryError('network', `unknown host in ${where}`, { cause: e });
  if (isTlsCode(code)) {
    return new MailferryError(
      'tls',
      `TLS certificate of ${where} is not trusted (${code}); pass --ca FILE to trust it, or --tls-insecure`,
      { cause: e },
    );
  }
  if (LOST.has(code) || extraLost.has(code)) return connectionLost(where, code, e);
  return undefined;
}
