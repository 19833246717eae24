/**
 * A real SMTP server for tests (`smtp-server` from npm) on 127.0.0.1, on a free port: implicit TLS
 * (`smtps`), STARTTLS or plain, with or without AUTH, with a certificate from a throwaway CA (the
 * Dovecot helper's openssl recipe). It keeps what it received, byte for byte after SMTP's own
 * dot-unstuffing, with the envelope and the time, and lets a test script replies: refuse a
 * recipient, defer (4xx) or refuse (5xx) a message.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { makeCerts } from '../../scripts/dev/dovecot.js';

export interface Received {
  from: string;
  to: string[];
  data: Buffer;
  /** Date.now() when the server accepted it */
  at: number;
  user?: string;
}

/**
 * What the server answers to DATA for the n-th message (0-based, counting every attempt); 'drop'
 * closes the connection instead of answering (the message is then not kept).
 */
export type DataReply = { code: number; message: string } | 'drop' | undefined;

export interface SmtpOptions {
  mode: 'tls' | 'starttls' | 'plain';
  /** require AUTH with this user and password (PLAIN, LOGIN) or OAuth2 access token (XOAUTH2) */
  auth?: { user: string; pass: string } | { user: string; accessToken: string };
  /** called for each message after it was read: a reply other than 250, or undefined */
  onData?: (n: number, data: Buffer) => DataReply;
  /** called for each RCPT TO: a reply other than 250, or undefined */
  onRcpt?: (address: string) => { code: number; message: string } | undefined;
}

export interface TestSmtp {
  port: number;
  caFile: string;
  received: Received[];
  /** DATA attempts, accepted or not */
  attempts: number;
  stop(): Promise<void>;
}

function smtpError(r: { code: number; message: string }): Error {
  return Object.assign(new Error(r.message), { responseCode: r.code });
}

export async function startSmtp(opts: SmtpOptions): Promise<TestSmtp> {
  const dir = await mkdtemp(join(tmpdir(), 'mf-smtp-'));
  const certs = await makeCerts(dir);
  const received: Received[] = [];
  const state = { attempts: 0 };
  const server = new SMTPServer({
    secure: opts.mode === 'tls',
    key: await readFile(certs.key),
    cert: await readFile(certs.cert),
    disabledCommands: [...(opts.mode === 'plain' ? ['STARTTLS'] : []), ...(opts.auth === undefined ? ['AUTH'] : [])],
    authOptional: opts.auth === undefined,
    allowInsecureAuth: opts.mode === 'plain',
    logger: false,
    size: 64 << 20,
    authMethods: opts.auth !== undefined && 'accessToken' in opts.auth ? ['XOAUTH2'] : ['PLAIN', 'LOGIN'],
    onAuth(auth, _session, cb) {
      const want = opts.auth;
      const ok =
        want !== undefined &&
        auth.username === want.user &&
        ('accessToken' in want ? auth.method === 'XOAUTH2' && auth.accessToken === want.accessToken : auth.password === want.pass);
      if (ok) cb(null, { user: auth.username });
      else cb(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
    },
    onRcptTo(address, _session, cb) {
      const r = opts.onRcpt?.(address.address);
      cb(r === undefined ? undefined : smtpError(r));
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const data = Buffer.concat(chunks);
        const n = state.attempts++;
        const r = opts.onData?.(n, data);
        if (r === 'drop') {
          for (const c of server.connections) c._socket.destroy();
          return;
        }
        if (r !== undefined) {
          cb(smtpError(r));
          return;
        }
        const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        received.push({
          from,
          to: session.envelope.rcptTo.map((a) => a.address),
          data,
          at: Date.now(),
          ...(typeof session.user === 'string' ? { user: session.user } : {}),
        });
        cb(null, `Ok: queued as T${received.length}`);
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    caFile: certs.ca,
    received,
    get attempts() {
      return state.attempts;
    },
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * What a message becomes on the way through SMTP DATA (RFC 5321 §2.3.8, §4.1.1.4): every line end
 * (CRLF, bare LF, bare CR) is CRLF, and a last line without one gets it. For a message a server
 * sent us in CRLF form with a final CRLF this is the identity.
 */
export function smtpView(raw: Buffer): Buffer {
  const crlf = Buffer.from(raw.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
  return crlf.length === 0 || crlf.subarray(-2).toString('latin1') !== '\r\n' ? Buffer.concat([crlf, Buffer.from('\r\n')]) : crlf;
}
