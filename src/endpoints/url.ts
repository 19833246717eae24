import { resolve } from 'node:path';
import { MailferryError } from '../domain/errors.js';

/**
 * Endpoint addresses as users write them:
 *   imaps://USER@HOST[:993]   IMAP over TLS          imap://USER@HOST[:143]   IMAP + STARTTLS (required)
 *   pop3s://USER@HOST[:995]   POP3 over TLS          pop3://USER@HOST[:110]   POP3 + STLS (required)
 *   maildir:PATH              local Maildir          mbox:PATH                local mbox tree
 *   smtps://[USER@]HOST[:465] SMTP over TLS          smtp://[USER@]HOST[:587] SMTP + STARTTLS (required)
 * USER may be a whole e-mail address ("alice@example.org@imap.example.org" or with %40). For SMTP
 * the user is optional: without one, no AUTH is sent (parseSmtpEndpoint).
 * A password in the address is refused: secrets never go on the command line.
 */
export type TlsMode = 'tls' | 'starttls' | 'plain';

export interface RemoteEndpoint {
  kind: 'imap' | 'pop3' | 'smtp';
  /** '' only for an SMTP relay reached without AUTH. */
  user: string;
  host: string;
  port: number;
  tls: TlsMode;
}

export interface LocalEndpoint {
  kind: 'maildir' | 'mbox';
  path: string;
}

export type Endpoint = RemoteEndpoint | LocalEndpoint;

const DEFAULT_PORT: Record<string, number> = { imaps: 993, imap: 143, pop3s: 995, pop3: 110, smtps: 465, smtp: 587 };

export function parseEndpoint(text: string, cwd = process.cwd()): Endpoint {
  const local = /^(maildir|mbox):(.+)$/.exec(text);
  if (local && !local[2]?.startsWith('//')) {
    return { kind: local[1] as 'maildir' | 'mbox', path: resolve(cwd, local[2] as string) };
  }
  const m = /^(imaps|imap|pop3s|pop3):\/\/(.+)$/.exec(text);
  if (!m) {
    throw new MailferryError('usage', `not an endpoint: "${redactUrl(text)}" (use imaps://USER@HOST, pop3s://USER@HOST, maildir:DIR or mbox:DIR)`);
  }
  const scheme = m[1] as string;
  const { user, host, port } = address(scheme, m[2] as string, true);
  return { kind: scheme.startsWith('imap') ? 'imap' : 'pop3', user, host, port, tls: scheme.endsWith('s') ? 'tls' : 'starttls' };
}

/** `smtps://[USER@]HOST[:465]` (TLS) or `smtp://[USER@]HOST[:587]` (STARTTLS); user '' without AUTH. */
export function parseSmtpEndpoint(text: string): RemoteEndpoint {
  const m = /^(smtps|smtp):\/\/(.+)$/.exec(text);
  if (!m) throw new MailferryError('usage', `not an SMTP address: "${redactUrl(text)}" (use smtps://[USER@]HOST[:465] or smtp://[USER@]HOST[:587])`);
  const scheme = m[1] as string;
  const { user, host, port } = address(scheme, m[2] as string, false);
  return { kind: 'smtp', user, host, port, tls: scheme === 'smtps' ? 'tls' : 'starttls' };
}

/** `USER@HOST[:PORT]` after the scheme: a password is refused, the port defaults by scheme. */
function address(scheme: string, text: string, needsUser: boolean): { user: string; host: string; port: number } {
  let rest = text.replace(/\/+$/, '');
  const at = rest.lastIndexOf('@');
  if (at <= 0 && needsUser) throw new MailferryError('usage', `${scheme}:// address needs a user: ${scheme}://USER@HOST`);
  const userPart = at <= 0 ? '' : rest.slice(0, at);
  rest = rest.slice(at + 1);
  if (userPart.includes(':')) {
    throw new MailferryError('usage', 'a password in the address is not allowed; use --password-env, --password-file or --password-command');
  }
  const hostPort = /^(\[[^\]]+\]|[^:/]+)(?::(\d+))?$/.exec(rest);
  if (!hostPort) throw new MailferryError('usage', `bad host in ${scheme}:// address: "${rest}"`);
  const port = hostPort[2] === undefined ? DEFAULT_PORT[scheme] : Number(hostPort[2]);
  if (port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new MailferryError('usage', `bad port in ${scheme}:// address`);
  }
  let user: string;
  try {
    user = decodeURIComponent(userPart);
  } catch {
    throw new MailferryError('usage', `bad user name in ${scheme}:// address`);
  }
  return { user, host: (hostPort[1] as string).replace(/^\[|\]$/g, ''), port };
}

/** The endpoint as shown in messages and stored in state: never a secret. */
export function describeEndpoint(e: Endpoint): string {
  if ('path' in e) return `${e.kind}:${e.path}`;
  const scheme = e.kind + (e.tls === 'tls' ? 's' : '');
  return `${scheme}://${e.user === '' ? '' : `${e.user}@`}${e.host}:${e.port}`;
}

function redactUrl(text: string): string {
  return text.replace(/\/\/([^@/]*):[^@/]*@/, '//$1:***@');
}
