/**
 * `node dist/scripts/bench/fetch-floor.js --port P --user U --password-env VAR`
 *
 * The WAN benchmark's IMAP reference: a bare client over plain IMAP (the emulated link's port) on
 * one connection. LOGIN, `LIST "" "*"`, then per folder `SELECT` and one
 * `UID FETCH 1:* (BODY.PEEK[])`, each awaited in turn; the literals are counted and thrown away
 * (no parsing beyond finding them, no disk). So it pays one LOGIN, one LIST and two round trips per
 * folder plus the transfer: the floor any one-connection client faces on the same link, as
 * retr-loop.ts is for POP3. Prints one JSON line: {"messages": N, "bytes": B, "folders": F}.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    user: { type: 'string' },
    'password-env': { type: 'string' },
  },
});

function required(name: string, v: string | undefined): string {
  if (v === undefined || v === '') throw new Error(`fetch-floor: --${name} is required`);
  return v;
}

const port = Number(required('port', values.port));
const user = required('user', values.user);
const password = process.env[required('password-env', values['password-env'])] ?? '';

const sock = net.connect({ host: values.host, port });
/** Unparsed bytes (a partial line); literals are skipped by count without being kept. */
let buf = Buffer.alloc(0);
let literalLeft = 0;
let lines: string[] = [];
let waiting: { tag: string; resolve: (lines: string[]) => void; reject: (e: Error) => void } | undefined;
let greeted: (() => void) | undefined;
let messages = 0;
let bytes = 0;

function fail(e: Error): void {
  waiting?.reject(e);
  waiting = undefined;
}

sock.on('data', (chunk: Buffer) => {
  let at = 0;
  while (at < chunk.length) {
    if (literalLeft > 0) {
      const n = Math.min(literalLeft, chunk.length - at);
      literalLeft -= n;
      bytes += n;
      at += n;
      continue;
    }
    const nl = chunk.indexOf(0x0a, at);
    if (nl < 0) {
      buf = Buffer.concat([buf, chunk.subarray(at)]);
      return;
    }
    const line = Buffer.concat([buf, chunk.subarray(at, nl + 1)]).toString('latin1');
    buf = Buffer.alloc(0);
    at = nl + 1;
    onLine(line);
  }
});
sock.on('error', fail);
sock.on('close', () => fail(new Error('fetch-floor: connection closed')));

function onLine(line: string): void {
  const lit = /\{(\d+)\}\r\n$/.exec(line);
  if (lit?.[1] !== undefined) {
    literalLeft = Number(lit[1]);
    if (/BODY\[\]/i.test(line)) messages++;
  }
  if (greeted !== undefined && line.startsWith('* OK')) {
    greeted();
    greeted = undefined;
    return;
  }
  lines.push(line);
  if (waiting !== undefined && line.startsWith(`${waiting.tag} `)) {
    const w = waiting;
    waiting = undefined;
    const got = lines;
    lines = [];
    if (line.startsWith(`${w.tag} OK`)) w.resolve(got);
    else w.reject(new Error(`fetch-floor: ${line.trim()}`));
  }
}

let tagNo = 0;
function command(text: string): Promise<string[]> {
  const tag = `F${++tagNo}`;
  return new Promise((resolve, reject) => {
    waiting = { tag, resolve, reject };
    sock.write(`${tag} ${text}\r\n`);
  });
}

const quote = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

async function main(): Promise<void> {
  await new Promise<void>((resolve) => {
    greeted = resolve;
  });
  await command(`LOGIN ${quote(user)} ${quote(password)}`);
  const listed = await command('LIST "" "*"');
  // `* LIST (\flags) "/" name`: names as the server quotes them (the seeded ones are plain ASCII).
  const folders = listed
    .map((l) => /^\* LIST \(([^)]*)\) \S+ (.+)\r\n$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && !/\\Noselect|\\NonExistent/i.test(m[1] ?? ''))
    .map((m) => m[2] ?? '');
  for (const f of folders) {
    const selected = await command(`SELECT ${f}`);
    if (selected.some((l) => /^\* 0 EXISTS/.test(l))) continue;
    await command('UID FETCH 1:* (BODY.PEEK[])');
  }
  await command('LOGOUT').catch(() => []);
  sock.removeAllListeners('close');
  sock.destroy();
  process.stdout.write(`${JSON.stringify({ messages, bytes, folders: folders.length })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
