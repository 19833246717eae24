import type net from 'node:net';
import { lineServer, type Handler, type LineServer } from './line-server.js';

export type { Handler } from './line-server.js';

/**
 * Scripted POP3 servers on 127.0.0.1 (RFC 1939, RFC 2449 CAPA), for what a real Dovecot cannot be
 * made to do: no STLS, injected bytes, [IN-USE] without a lock, no UIDL, dropped connections, a
 * RETR or TOP answered -ERR, a UIDL shared by two messages. `standard` is a small, correct server
 * over a list of messages; a test's `override` answers a line first when it returns true.
 */
export type Fake = LineServer;

export function fakeServer(handler: Handler, greeting = '+OK fake ready', opts: { greetAfterMs?: number } = {}): Promise<Fake> {
  return lineServer(handler, greeting, opts);
}

export function stuff(body: Buffer): Buffer {
  const text = body.toString('latin1');
  const lines = text.split('\r\n');
  if (text.endsWith('\r\n')) lines.pop();
  return Buffer.from(lines.map((l) => (l.startsWith('.') ? '.' + l : l) + '\r\n').join('') + '.\r\n', 'latin1');
}

export interface Mailbox {
  capa?: string[] | null;
  password?: string;
  messages?: Buffer[];
  uidl?: boolean;
  /** The UIDL of each message (default u1, u2, ...): a repeated one is the fault RFC 1939 §7 forbids. */
  uidls?: string[];
  /** Message numbers whose RETR or TOP is answered -ERR. */
  refuse?: { retr?: number[]; top?: number[] };
}

/** A small, correct POP3 server over `messages`, with per-test overrides first. */
export function standard(box: Mailbox, override?: (line: string, sock: net.Socket) => boolean): Handler {
  const messages = box.messages ?? [];
  return (line, sock) => {
    if (override?.(line, sock) === true) return;
    const [verb = '', arg] = line.split(' ');
    const n = Number(arg);
    const msg = messages[n - 1];
    switch (verb.toUpperCase()) {
      case 'CAPA':
        if (box.capa === null) sock.write('-ERR unknown command\r\n');
        else sock.write(`+OK\r\n${(box.capa ?? ['USER', 'UIDL', 'TOP']).map((c) => c + '\r\n').join('')}.\r\n`);
        return;
      case 'USER':
        sock.write('+OK\r\n');
        return;
      case 'PASS':
        sock.write(arg === (box.password ?? 'pw') ? '+OK Logged in.\r\n' : '-ERR [AUTH] Authentication failed.\r\n');
        return;
      case 'LIST':
        sock.write(`+OK\r\n${messages.map((m, i) => `${i + 1} ${m.length}\r\n`).join('')}.\r\n`);
        return;
      case 'UIDL':
        if (box.uidl === false) sock.write('-ERR unknown command\r\n');
        else sock.write(`+OK\r\n${messages.map((_, i) => `${i + 1} ${box.uidls?.[i] ?? `u${i + 1}`}\r\n`).join('')}.\r\n`);
        return;
      case 'TOP': {
        const head = msg === undefined ? -1 : msg.indexOf('\r\n\r\n');
        if (msg === undefined) sock.write('-ERR no such message\r\n');
        else if (box.refuse?.top?.includes(n) === true) sock.write('-ERR cannot read that message now\r\n');
        else sock.write(Buffer.concat([Buffer.from('+OK\r\n'), stuff(head < 0 ? msg : msg.subarray(0, head + 4))]));
        return;
      }
      case 'RETR':
        if (msg === undefined) sock.write('-ERR no such message\r\n');
        else if (box.refuse?.retr?.includes(n) === true) sock.write('-ERR cannot read that message now\r\n');
        else sock.write(Buffer.concat([Buffer.from(`+OK ${msg.length} octets\r\n`), stuff(msg)]));
        return;
      case 'DELE':
        sock.write(msg === undefined ? '-ERR no such message\r\n' : '+OK deleted\r\n');
        return;
      case 'QUIT':
        sock.end('+OK bye\r\n');
        return;
      default:
        sock.write('-ERR unknown command\r\n');
    }
  };
}


/** A hostile body: `chunk` written again and again as fast as the socket drains, until it closes. */
export function endless(sock: net.Socket, chunk: Buffer): void {
  const pump = (): void => {
    while (!sock.destroyed && sock.write(chunk));
    if (!sock.destroyed) sock.once('drain', pump);
  };
  pump();
}

/** A hostile body: one byte of `bytes` (cycled) every `everyMs`, never silent for long, never done. */
export function dribble(sock: net.Socket, bytes: Buffer, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (sock.destroyed) clearInterval(timer);
    else sock.write(bytes.subarray(i % bytes.length, (i++ % bytes.length) + 1));
  }, everyMs);
  sock.once('close', () => clearInterval(timer));
}
