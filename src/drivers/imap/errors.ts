import type { ImapFlow } from 'imapflow';
import { MailferryError, errnoCode } from '../../domain/errors.js';
import { connectionLost as lost, mapNetError, type NetErrorOptions } from '../../domain/net-errors.js';

/**
 * Translate what imapflow (or the socket, TLS, DNS layers under it) throws into our typed errors.
 * Branches on codes only, never on message text.
 */
/** imapflow's own codes for a connection that went away (the socket's are in domain/net-errors.ts). */
const IMAPFLOW_LOST = new Set([
  'CONNECT_TIMEOUT',
  'GREETING_TIMEOUT',
  'UPGRADE_TIMEOUT',
  'EConnectionClosed',
  'NoConnection',
  'ClosedAfterConnectText',
  'ClosedAfterConnectTLS',
  'StateLogout',
]);

function prop(e: unknown, key: string): unknown {
  return typeof e === 'object' && e !== null && key in e ? (e as Record<string, unknown>)[key] : undefined;
}

/** How long to wait when a server throttles without saying for how long. */
export const DEFAULT_THROTTLE_MS = 15_000;

/** The response code of a tagged NO/BAD (`NO [THROTTLED] ...` -> THROTTLED), as imapflow parsed it. */
function responseCode(e: unknown): string | undefined {
  const given = prop(e, 'serverResponseCode');
  if (typeof given === 'string') return given.toUpperCase();
  const attrs = prop(prop(e, 'response'), 'attributes');
  const first = Array.isArray(attrs) ? (attrs[0] as unknown) : undefined;
  const section = prop(first, 'section');
  const value = Array.isArray(section) ? prop(section[0], 'value') : undefined;
  return typeof value === 'string' ? value.toUpperCase().trim() : undefined;
}

/**
 * A throttled server: how long it asks us to wait, or undefined when it is not throttling.
 * RFC 5530 codes THROTTLED (Gmail, Yahoo) and UNAVAILABLE (a temporary failure), imapflow's
 * ETHROTTLE (Microsoft's BAD "Request is throttled" after imapflow's own retries), and a NO or
 * BYE carrying Microsoft's "Suggested Backoff Time: N milliseconds". Microsoft gives the time in
 * the text only, so that one number is read from the text; nothing else here is.
 */
function throttleOf(e: unknown): number | undefined {
  const text = [prop(e, 'responseText'), prop(e, 'reason')].filter((t): t is string => typeof t === 'string').join(' ');
  const suggested = /Suggested Backoff Time:?\s*(\d+)\s*milli/i.exec(text);
  if (suggested !== null) return Number(suggested[1]);
  if (errnoCode(e) === 'ETHROTTLE') {
    const reset = prop(e, 'throttleReset');
    const waited = prop(e, 'throttleWaited');
    return typeof reset === 'number' ? Math.max(0, reset - (typeof waited === 'number' ? waited : 0)) : DEFAULT_THROTTLE_MS;
  }
  const code = responseCode(e);
  if (code === 'THROTTLED' || code === 'UNAVAILABLE') return DEFAULT_THROTTLE_MS;
  return undefined;
}

/**
 * Is the connection still there? Not once the server said BYE (imapflow's state LOGOUT), nor once
 * imapflow closed it or marked it unusable. imapflow ends some commands quietly on such a
 * connection instead of failing them: 2.1.2 let fetch() yield nothing and download() return `{}`
 * for as long as the socket stayed open after a BYE; 2.10.2 closes the socket on the next turn of
 * the event loop, but until then search() and store() still resolve `false`, and once it closed,
 * download() returns `{}` (no mailbox) and search() `false`. None of that may pass for "no
 * messages", "expunged meanwhile" or "stored". `selected`: the command needed a mailbox selected
 * (FETCH, SEARCH, STORE), and a connection that lost it (imapflow deselects on close) is lost too.
 */
function alive(client: ImapFlow, selected = false): boolean {
  if (client.state === client.states.LOGOUT || client.isClosed || !client.usable) return false;
  return !selected || client.mailbox !== false;
}

/**
 * The one liveness check of the IMAP adapter: every command runs on a connection that passed it
 * (pool.ts: a connection is checked when it is handed out and after every use; the Source and the
 * target's flag and expunge code also after each command whose quiet result they would read).
 * Throws a retryable lost connection, with the server's BYE text when it sent one.
 */
export function assertAlive(client: ImapFlow, where: string, opts: { selected?: boolean } = {}): void {
  if (!alive(client, opts.selected)) throw connectionLost(client, where);
}

/** Whether a pooled connection may be used again (see assertAlive). */
export function isAlive(client: ImapFlow): boolean {
  return alive(client);
}

/**
 * What a command on `client` failed with: a lost connection when the connection is gone, whatever
 * imapflow threw on its way out (NoMailboxSelected after a BYE, a NO it read before the BYE);
 * otherwise as mapImapError. Our own typed errors pass unchanged, and so does the error for which
 * we closed the connection ourselves (`closedByClient`: an APPEND literal that could not be read).
 */
export function commandError(e: unknown, client: ImapFlow, where: string): MailferryError {
  if (e instanceof MailferryError) return e;
  const fault = faults.get(client);
  if (fault !== undefined) return fault;
  if (!alive(client) && !client.closedByClient) return connectionLost(client, where, e);
  return mapImapError(e, where);
}

/**
 * imapflow's bounds on what a server may make it buffer (its ImapStream and parser, set in
 * pool.ts): a literal, a line, a response over its size, a response of too many tokens. Any of
 * them ends the connection: imapflow emits the error on the client ('error') and the command in
 * flight fails with a closed connection, so pool.ts notes the error (noteFault) and commandError
 * reports it instead of a lost connection: a server fault, not retried (exit 5). The Source tells
 * a body literal over its message's bound apart (literalTooLarge) and skips that message.
 */
const LIMIT_CODES = new Set(['LiteralTooLarge', 'LineTooLarge', 'ResponseTooLarge', 'TooManyTokens']);
const faults = new WeakMap<ImapFlow, MailferryError>();

/** The size of the literal imapflow refused for being over its bound, when that is what `e` is (or was caused by). */
export function literalTooLarge(e: unknown): number | undefined {
  const cause = e instanceof MailferryError ? e.cause : e;
  if (errnoCode(cause) !== 'LiteralTooLarge') return undefined;
  const size = prop(cause, 'literalSize');
  return typeof size === 'number' ? size : Infinity;
}

/** The server broke one of our bounds on `client` (or its connection was ended for it): the command's error from now on. */
export function noteFault(client: ImapFlow, e: unknown, where: string): void {
  if (faults.has(client)) return;
  if (e instanceof MailferryError) faults.set(client, e);
  else if (LIMIT_CODES.has(errnoCode(e) ?? '')) faults.set(client, overLimit(e, where));
}

function overLimit(e: unknown, where: string): MailferryError {
  const max = prop(e, 'maxSize');
  const what = { LiteralTooLarge: 'a literal', LineTooLarge: 'a line', ResponseTooLarge: 'an answer', TooManyTokens: 'an answer of too many parts' }[errnoCode(e) ?? ''] ?? 'an answer';
  return new MailferryError('protocol', `${where} sent ${what} too large (more than ${String(max)}${errnoCode(e) === 'TooManyTokens' ? '' : ' bytes'}); connection dropped`, { cause: e });
}

/** A connection that went away under a command: retried; the BYE text says why, when the server sent one. */
export function connectionLost(client: ImapFlow, where: string, cause?: unknown): MailferryError {
  const bye = client.byeReason;
  return lost(where, bye === undefined ? undefined : `BYE ${printable(bye)}`, cause);
}

/** A server's text for our one-line messages: control characters out, at most 200 characters. */
export function printable(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return clean.length > 200 ? `${clean.slice(0, 200)}...` : clean;
}

/** `net`: what domain/net-errors.ts needs besides (pool.ts: the usual port's hint while it connects). */
export function mapImapError(e: unknown, where: string, net: NetErrorOptions = {}): MailferryError {
  if (e instanceof MailferryError) return e;
  const code = errnoCode(e);
  const throttle = throttleOf(e);
  if (throttle !== undefined) {
    const said = prop(e, 'responseText') ?? prop(e, 'reason') ?? code;
    return new MailferryError('network', `${where} is throttling us (${String(said)})`, { cause: e, retryAfterMs: throttle });
  }
  if (prop(e, 'authenticationFailed') === true || prop(e, 'serverResponseCode') === 'AUTHENTICATIONFAILED') {
    return new MailferryError('auth', `login refused by ${where}: wrong user name or password`, { cause: e });
  }
  const mapped = mapNetError(e, where, IMAPFLOW_LOST, net);
  if (mapped !== undefined) return mapped;
  if (code === 'STARTTLS_INJECTION') {
    return new MailferryError('tls', `${where} sent data before the TLS handshake (STARTTLS injection); connection dropped`, { cause: e });
  }
  // imapflow (2.1.2 and 2.10.2) reports a server without STARTTLS as a plain Error with `tlsFailed` and no code.
  if (code === 'MissingServerExtension' || (code === undefined && prop(e, 'tlsFailed') === true)) {
    return new MailferryError('tls', `${where} does not offer STARTTLS; refusing to log in in plain text`, { cause: e });
  }
  if (prop(e, 'responseStatus') === 'NO' || prop(e, 'responseStatus') === 'BAD') {
    const text = prop(e, 'responseText');
    return new MailferryError('mailbox', `${where}: server said ${String(text ?? 'NO')}`, { cause: e });
  }
  if (code !== undefined) {
    return new MailferryError('network', `${where}: ${code}`, { cause: e, retryable: true });
  }
  return new MailferryError('protocol', `${where}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}
