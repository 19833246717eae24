/**
 * Loads messages into a mailbox over IMAP, for tests, the demo and the benchmark.
 *
 * Folders are created (and unsubscribed when asked) with imapflow. Messages go in with
 * MULTIAPPEND (RFC 3502) + LITERAL+ over a minimal raw connection, in batches: imapflow keeps one
 * command in flight and has no MULTIAPPEND, and Dovecot 2.3 spends ~2-5 ms per single APPEND
 * (it opens the mailbox and commits one transaction per command); one MULTIAPPEND of 500 small
 * messages is one transaction. Measured here (2 cores, ~1 KB messages): 1000 messages take
 * 1.9-5.4 s with imapflow append, 0.3-0.9 s batched (incl. logins); 20k take 6-7 s into one
 * folder, 1-3.4 s spread over 4 folders/connections. Servers without MULTIAPPEND or LITERAL+
 * get imapflow append.
 * One folder is always filled by one connection, in order, so UIDs follow `messages`
 * (unless `ordered: false`, which may split a big folder over several connections).
 *
 * FINDINGS, Dovecot 2.3.19 (maildir, mail_save_crlf=no), UID FETCH BODY.PEEK[] vs seeded bytes:
 * - Bare LF is stored as LF (all line ends are stored as LF) and FETCH returns CRLF; a CR that
 *   is not followed by LF is kept as is. So a bare-LF message cannot come back byte-exact.
 * - A missing final newline stays missing; an empty body (headers + blank line) is exact.
 * - NUL: a plain literal may not carry NUL, so NUL-containing messages are sent as literal8
 *   (`~{n+}`, RFC 3516 BINARY, which Dovecot advertises; imapflow's append does the same).
 *   Dovecot stores the NULs unchanged on disk, but BODY[] / BODY.PEEK[] returns each NUL as
 *   0x80 (same length, RFC822.SIZE unchanged). BINARY.PEEK[] returns the message with its NULs
 *   (as literal8). If the part says Content-Transfer-Encoding: binary, BODY[] instead returns a
 *   re-encoded base64 version with a rewritten CTE header (different size).
 *   BINARY[] is no byte-exact route either: it decodes base64/QP parts (also nested ones) and
 *   rewrites their CTE to binary.
 * - The internal date is the file mtime (seconds); APPEND's zone offset is not kept.
 */
import net from 'node:net';
import { ImapFlow } from '../../src/drivers/imap/imapflow.js';
import { encodeUtf7 } from '../../src/formats/utf7.js';

export interface SeedMessage {
  raw: Buffer;
  flags?: string[];
  date?: Date;
}

export interface SeedFolder {
  /** Unicode, "/"-separated; INBOX is never created. */
  path: string;
  messages: SeedMessage[];
  /** default true */
  subscribe?: boolean;
}

export interface SeedOptions {
  /** parallel IMAP connections; default 4 */
  connections?: number;
  /** false: a big folder may be filled by several connections at once (UIDs then out of order) */
  ordered?: boolean;
  /** force one imapflow APPEND per message instead of MULTIAPPEND batches */
  singleAppend?: boolean;
}

interface Server {
  host: string;
  imapPort: number;
}

interface User {
  name: string;
  password: string;
}

function flowClient(server: Server, user: User): ImapFlow {
  return new ImapFlow({
    host: server.host,
    port: server.imapPort,
    secure: false,
    doSTARTTLS: false,
    auth: { user: user.name, pass: user.password },
    logger: false,
    disableAutoIdle: true,
  });
}

/** IMAP modified UTF-7 (RFC 3501 5.1.3). */
export const encodeMailboxName = encodeUtf7;

function quoted(s: string): string {
  if (/[\r\n\0]/.test(s)) throw new Error(`cannot quote ${JSON.stringify(s)}`);
  return '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function imapDate(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `"${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()] ?? ''}-${d.getUTCFullYear()} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000"`;
}

function flagList(flags: string[]): string {
  for (const f of flags) {
    if (!/^\\?[^\s()[\]{}"%*\\\x00-\x1f\x7f]+$/.test(f)) throw new Error(`bad flag ${JSON.stringify(f)}`);
  }
  return '(' + flags.filter((f) => f.toLowerCase() !== '\\recent').join(' ') + ')';
}

interface Reply {
  status: string;
  text: string;
  untagged: string[];
}

/** Just enough IMAP for LOGIN, CAPABILITY, APPEND and LOGOUT: line-based replies, no literals. */
class RawImap {
  private buf = Buffer.alloc(0);
  private lines: string[] = [];
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private tagNo = 0;
  capabilities = new Set<string>();

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (let i = this.buf.indexOf('\r\n'); i >= 0; i = this.buf.indexOf('\r\n')) {
        this.lines.push(this.buf.subarray(0, i).toString('utf8'));
        this.buf = this.buf.subarray(i + 2);
      }
      this.poke();
    });
    sock.on('error', (e: Error) => this.fail(e));
    sock.on('close', () => this.fail(new Error('IMAP connection closed')));
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async nextLine(): Promise<string> {
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return line;
      if (this.failure !== undefined) throw this.failure;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  static async open(server: Server, user: User): Promise<RawImap> {
    const sock = net.connect({ host: server.host, port: server.imapPort });
    sock.setNoDelay(true);
    const c = new RawImap(sock);
    const greeting = await c.nextLine();
    if (!greeting.startsWith('* OK')) throw new Error(`IMAP greeting: ${greeting}`);
    await c.run([Buffer.from(`LOGIN ${quoted(user.name)} ${quoted(user.password)}`)]);
    const caps = await c.run([Buffer.from('CAPABILITY')]);
    for (const line of caps.untagged) {
      if (line.toUpperCase().startsWith('* CAPABILITY ')) {
        for (const cap of line.slice(13).split(' ')) c.capabilities.add(cap.toUpperCase());
      }
    }
    return c;
  }

  /** Sends `<tag> ` + parts + CRLF and waits for the tagged reply; throws unless OK. */
  async run(parts: Buffer[]): Promise<Reply> {
    const tag = `s${++this.tagNo}`;
    this.sock.write(Buffer.concat([Buffer.from(tag + ' '), ...parts, Buffer.from('\r\n')]));
    const untagged: string[] = [];
    for (;;) {
      const line = await this.nextLine();
      if (line.startsWith(tag + ' ')) {
        const [status = '', ...rest] = line.slice(tag.length + 1).split(' ');
        const reply = { status: status.toUpperCase(), text: rest.join(' '), untagged };
        if (reply.status !== 'OK') throw new Error(`IMAP ${reply.status}: ${reply.text}`);
        return reply;
      }
      if (line.startsWith('+')) throw new Error(`unexpected continuation: ${line}`);
      untagged.push(line);
    }
  }

  async close(): Promise<void> {
    try {
      await this.run([Buffer.from('LOGOUT')]);
    } catch {
      // closing anyway
    }
    this.sock.destroy();
  }
}

const BATCH_COUNT = 500;
const BATCH_BYTES = 8 * 1024 * 1024;

async function multiAppend(c: RawImap, path: string, messages: SeedMessage[]): Promise<void> {
  const binary = c.capabilities.has('BINARY');
  const mailbox = Buffer.from(` ${quoted(encodeMailboxName(path))}`);
  for (let start = 0; start < messages.length;) {
    const parts: Buffer[] = [Buffer.from('APPEND'), mailbox];
    let bytes = 0;
    let end = start;
    while (end < messages.length && end - start < BATCH_COUNT && (end === start || bytes < BATCH_BYTES)) {
      const m = messages[end++];
      if (m === undefined) break;
      const hasNul = m.raw.includes(0);
      if (hasNul && !binary) throw new Error('message contains NUL and the server lacks BINARY');
      const date = m.date !== undefined ? ' ' + imapDate(m.date) : '';
      parts.push(Buffer.from(` ${flagList(m.flags ?? [])}${date} ${hasNul ? '~' : ''}{${m.raw.length}+}\r\n`), m.raw);
      bytes += m.raw.length;
    }
    await c.run(parts);
    start = end;
  }
}

async function singleAppend(c: ImapFlow, path: string, messages: SeedMessage[]): Promise<void> {
  for (const m of messages) {
    const res = await c.append(path, m.raw, m.flags ?? [], m.date);
    if (res === false) throw new Error(`APPEND to ${path} failed`);
  }
}

interface Job {
  path: string;
  messages: SeedMessage[];
}

function plan(folders: SeedFolder[], ordered: boolean, connections: number): Job[] {
  const jobs: Job[] = [];
  const total = folders.reduce((n, f) => n + f.messages.length, 0);
  const chunk = Math.max(BATCH_COUNT, Math.ceil(total / connections));
  for (const f of folders) {
    if (f.messages.length === 0) continue;
    if (ordered) {
      jobs.push({ path: f.path, messages: f.messages });
      continue;
    }
    for (let i = 0; i < f.messages.length; i += chunk) jobs.push({ path: f.path, messages: f.messages.slice(i, i + chunk) });
  }
  // biggest first, so the pool finishes evenly
  return jobs.sort((a, b) => b.messages.length - a.messages.length);
}

type Appender = { append(job: Job): Promise<void>; close(): Promise<void> };

async function openAppender(server: Server, user: User, forceSingle: boolean): Promise<Appender> {
  if (!forceSingle) {
    const raw = await RawImap.open(server, user);
    if (raw.capabilities.has('MULTIAPPEND') && raw.capabilities.has('LITERAL+')) {
      return { append: (job) => multiAppend(raw, job.path, job.messages), close: () => raw.close() };
    }
    await raw.close();
  }
  const flow = flowClient(server, user);
  await flow.connect();
  return { append: (job) => singleAppend(flow, job.path, job.messages), close: () => flow.logout() };
}

export async function seedMailbox(server: Server, user: User, folders: SeedFolder[], opts: SeedOptions = {}): Promise<void> {
  const control = flowClient(server, user);
  await control.connect();
  try {
    for (const f of folders) {
      if (f.path.toUpperCase() === 'INBOX') continue;
      // A folder the server creates itself (Dovecot `auto = subscribe`) already exists.
      await control.mailboxCreate(f.path).catch((e: unknown) => {
        if ((e as { serverResponseCode?: unknown }).serverResponseCode !== 'ALREADYEXISTS') throw e;
      });
      if (f.subscribe === false) await control.mailboxUnsubscribe(f.path);
    }
  } finally {
    await control.logout();
  }

  const connections = Math.max(1, opts.connections ?? 4);
  const jobs = plan(folders, opts.ordered ?? true, connections);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    const a = await openAppender(server, user, opts.singleAppend === true);
    try {
      for (let job = jobs[next++]; job !== undefined && !failed; job = jobs[next++]) await a.append(job);
    } catch (e: unknown) {
      failed = true;
      throw e;
    } finally {
      await a.close();
    }
  };
  await Promise.all(Array.from({ length: Math.min(connections, jobs.length) }, worker));
}
