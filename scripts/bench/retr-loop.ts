/**
 * `node dist/scripts/bench/retr-loop.js --host H --port P --ca FILE --user U --password-env VAR [--window N]`
 *
 * The benchmark's POP3 reference: a bare pipelined RETR loop. TLS on connect (pop3s), USER/PASS,
 * STAT, then `RETR 1..N` with at most `--window` commands in flight (default 16), each body read to
 * its terminator (our ResponseReader, which undoes dot-stuffing) and thrown away: no archive, no
 * disk writes, no fsync. Prints one JSON line: {"messages": N, "bytes": B} (bytes after unstuffing).
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { ResponseReader, type BodyTarget, type Reply } from '../../src/drivers/pop3/reader.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    ca: { type: 'string' },
    user: { type: 'string' },
    'password-env': { type: 'string' },
    window: { type: 'string', default: '16' },
  },
});

function required(name: string, v: string | undefined): string {
  if (v === undefined || v === '') throw new Error(`retr-loop: --${name} is required`);
  return v;
}

const host = values.host;
const port = Number(required('port', values.port));
const user = required('user', values.user);
const password = process.env[required('password-env', values['password-env'])] ?? '';
const window = Number(values.window);
if (!Number.isInteger(window) || window < 1) throw new Error('retr-loop: --window must be a whole number >= 1');

const reader = new ResponseReader();
const sock = tls.connect({ host, port, ca: readFileSync(required('ca', values.ca)) });

function fail(err: Error): void {
  sock.destroy();
  reader.failAll(err);
}
sock.on('data', (chunk: Buffer) => {
  try {
    reader.feed(chunk);
  } catch (e: unknown) {
    fail(e instanceof Error ? e : new Error(String(e)));
  }
});
sock.on('error', fail);
sock.on('close', () => fail(new Error('retr-loop: connection closed')));

/** A single-line reply; throws unless +OK. Without `line`, the greeting. */
function command(line?: string): Promise<Reply> {
  const reply = new Promise<Reply>((resolve, reject) => {
    reader.expect({
      multi: false,
      onReply: (r) => {
        if (r.status === '+OK') resolve(r);
        else reject(new Error(`retr-loop: ${line?.split(' ')[0] ?? 'greeting'}: ${r.status} ${r.text}`));
        return undefined;
      },
      onError: reject,
    });
  });
  if (line !== undefined) sock.write(`${line}\r\n`);
  return reply;
}

let bytes = 0;

/** `RETR n`: resolves once the body's terminator was read; the body is only counted. */
function retr(n: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const body: BodyTarget = {
      write: (slice) => {
        bytes += slice.length;
      },
      end: resolve,
      fail: reject,
    };
    reader.expect({
      multi: true,
      onReply: (r) => {
        if (r.status === '+OK') return body;
        reject(new Error(`retr-loop: RETR ${n}: ${r.status} ${r.text}`));
        return undefined;
      },
      onError: reject,
    });
    sock.write(`RETR ${n}\r\n`);
  });
}

/** RETR 1..count, at most `window` in flight. */
function retrieveAll(count: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let next = 1;
    let done = 0;
    const pump = (): void => {
      while (next <= count && next - done <= window) {
        retr(next++).then(() => {
          done++;
          if (done === count) resolve();
          else pump();
        }, reject);
      }
    };
    if (count === 0) resolve();
    else pump();
  });
}

async function main(): Promise<void> {
  await command();
  await command(`USER ${user}`);
  await command(`PASS ${password}`);
  const stat = await command('STAT');
  const count = Number(/^(\d+)/.exec(stat.text)?.[1]);
  if (!Number.isInteger(count)) throw new Error(`retr-loop: bad STAT reply ${stat.text}`);
  await retrieveAll(count);
  await command('QUIT');
  sock.removeAllListeners('close');
  sock.end();
  process.stdout.write(`${JSON.stringify({ messages: count, bytes })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
