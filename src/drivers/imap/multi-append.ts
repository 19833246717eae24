import type { Writable } from 'node:stream';
import type { ImapFlow } from 'imapflow';
import { compiler, encodePath, enhanceCommandError, formatDateTime, formatFlag, normalizePath } from './imapflow.js';
import type { Literal } from './literal.js';

/**
 * APPEND and MULTIAPPEND (RFC 3502: several messages in one APPEND command, which the server
 * stores in one transaction, all or none), with the message literals streamed onto the socket.
 *
 * imapflow has no MULTIAPPEND (2.10.2 neither), and its own `append` (2.1.2) compiles the whole
 * command, literal included, into fresh Buffers (one copy of the message, another to add the final CRLF) before
 * writing it: with large messages and several connections that garbage was most of a migrate's
 * peak memory. So the command line is compiled here the way imapflow's `append` does
 * (commands/append.js: the same path encoding, flag and date formats, through imapflow's own
 * compiler) up to the first literal's size marker, run through the client's command executor,
 * and each literal's bytes are then written to the client's socket in chunks as they are read
 * (from memory or a spool file, literal.ts), waiting for the socket to drain:
 * - with LITERAL+ (RFC 7888) every literal is non-synchronizing (`{n+}`): all of it is written
 *   right after the command line (`onSend`);
 * - without, each literal is synchronizing (`{n}`): its bytes follow the server's "+"
 *   (`onPlusTag`), then the next message's flags, date and size marker, or the final CRLF.
 * A literal holding NUL is sent as literal8 (`~{n}`, RFC 3516) when the server has BINARY.
 * The tagged answer settles the command as for any imapflow command (NO/BAD reject with
 * `responseStatus`); a literal that cannot be read closes the connection (the server would
 * otherwise wait for the rest of it) and its error is thrown.
 *
 * The client's `exec` and `writeSocket` are not in imapflow's type declarations: this file is the
 * one place that reaches them, through the narrow type below, and checks that they exist.
 */
export interface AppendItem {
  body: Literal;
  flags: readonly string[];
  date?: Date;
}

export interface MultiAppended {
  uidValidity?: bigint;
  /** Target UIDs in the order of the items, when the server sent APPENDUID (UIDPLUS). */
  uids?: number[];
}

type Attribute = { type: string; value: unknown } | Attribute[];

interface ExecOptions {
  onSend?: () => void;
  onPlusTag?: () => Promise<void>;
}

interface Executor {
  exec(command: string, attributes: Attribute[], options: ExecOptions): Promise<ExecResponse>;
  capabilities: Map<string, unknown>;
  writeSocket?: Writable | null | false;
  close(): void;
}

interface ExecResponse {
  response: { attributes?: { section?: { type: string; value: unknown }[] }[] };
  next(): void;
}

function executor(client: ImapFlow): Executor | undefined {
  const c = client as unknown as Partial<Executor>;
  return typeof c.exec === 'function' && c.capabilities instanceof Map && 'writeSocket' in c ? (c as Executor) : undefined;
}

/** The server takes MULTIAPPEND and the client can send it. */
export function canMultiAppend(client: ImapFlow): boolean {
  const c = executor(client);
  return c !== undefined && c.capabilities.has('MULTIAPPEND');
}

/** An error shaped as imapflow's own (its `serverResponseCode` drives the caller's mapping). */
function tooBig(size: number, limit: number): Error {
  return Object.assign(new Error(`message of ${size} bytes is over the target's APPENDLIMIT=${limit}`), { serverResponseCode: 'APPENDLIMIT' });
}

/**
 * One APPEND of `items` into `path` (a MULTIAPPEND when there are several: the caller checks
 * `canMultiAppend`); rejects as imapflow's commands do (NO/BAD carry responseStatus).
 */
export async function multiAppend(client: ImapFlow, path: string, items: readonly AppendItem[]): Promise<MultiAppended> {
  const c = executor(client);
  if (c === undefined) throw new Error('imapflow has no command executor');
  if (items.length === 0) return {};
  const limit = c.capabilities.get('APPENDLIMIT');
  for (const item of items) if (typeof limit === 'number' && item.body.size > limit) throw tooBig(item.body.size, limit);
  const plus = c.capabilities.has('LITERAL+');
  const binary = c.capabilities.has('BINARY');
  /** Flags, date and size marker of one message: the command's arguments before its literal. */
  const head = (item: AppendItem): Attribute[] => {
    const flags = item.flags.map((f) => formatFlag(f)).filter((f): f is string => f !== false);
    const date = item.date === undefined ? undefined : formatDateTime(item.date);
    const marker = `${binary && item.body.nul ? '~' : ''}{${item.body.size}${plus ? '+' : ''}}`;
    return [flags.map((f) => ({ type: 'ATOM', value: f })), ...(date === undefined ? [] : [{ type: 'STRING', value: date }]), { type: 'TEXT', value: marker }];
  };
  const compile = async (attributes: Attribute[]): Promise<Buffer> => Buffer.concat(await compiler({ attributes: attributes as never }, { asArray: true }));

  let failed: unknown;
  let sent = 0;
  /** Literal `i`'s bytes, then the next message's arguments or the command's final CRLF. */
  const sendLiteral = async (i: number): Promise<void> => {
    const item = items[i];
    if (item === undefined) return;
    for await (const chunk of item.body.chunks()) await write(c, chunk);
    const next = items[i + 1];
    await write(c, next === undefined ? Buffer.from('\r\n') : Buffer.concat([Buffer.from(' '), await compile(head(next)), Buffer.from('\r\n')]));
  };
  const run = (p: Promise<void>): void => {
    p.catch((e: unknown) => {
      // The server waits for the rest of a literal that will not come: only closing ends that.
      failed ??= e;
      c.close();
    });
  };
  const options: ExecOptions = plus
    ? {
        onSend: () =>
          run(
            (async () => {
              for (let i = 0; i < items.length; i++) await sendLiteral(i);
            })(),
          ),
      }
    : { onPlusTag: async () => run(sendLiteral(sent++)) };
  const first = items[0] as AppendItem;
  let res: ExecResponse;
  try {
    res = await c.exec('APPEND', [{ type: 'ATOM', value: encodePath(client, normalizePath(client, path)) }, ...head(first)], options);
  } catch (e: unknown) {
    if (failed !== undefined && !(failed instanceof SocketGone)) throw failed;
    // As imapflow's own commands do: the server's response code (OVERQUOTA, TOOBIG...) on the error.
    if (typeof e === 'object' && e !== null && 'response' in e) await enhanceCommandError(e as Parameters<typeof enhanceCommandError>[0]);
    throw e;
  }
  try {
    const section = res.response.attributes?.[0]?.section ?? [];
    if (String(section[0]?.value ?? '').toUpperCase() !== 'APPENDUID') return {};
    const validity = String(section[1]?.value ?? '');
    const uids = expandSet(String(section[2]?.value ?? ''));
    return {
      ...(/^\d{1,10}$/.test(validity) ? { uidValidity: BigInt(validity) } : {}),
      ...(uids !== undefined && uids.length === items.length ? { uids } : {}),
    };
  } finally {
    res.next();
  }
}

/** The socket went away while writing: the command's own rejection says why. */
class SocketGone extends Error {}

/** Write to the client's socket (or its compression stream), waiting for it to drain. */
async function write(c: Executor, chunk: Buffer): Promise<void> {
  const s = c.writeSocket;
  if (s === undefined || s === null || s === false || s.destroyed) throw new SocketGone('connection closed');
  if (s.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      s.off('drain', done);
      s.off('close', gone);
      resolve();
    };
    const gone = (): void => {
      s.off('drain', done);
      s.off('close', gone);
      reject(new SocketGone('connection closed'));
    };
    s.on('drain', done);
    s.on('close', gone);
  });
}

/** "5:7,9" -> [5, 6, 7, 9] in the order given (RFC 4315: the UIDs in the order of the messages). */
function expandSet(set: string): number[] | undefined {
  const out: number[] = [];
  for (const part of set.split(',')) {
    const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(part);
    if (m === null) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b - a > 1_000_000) return undefined;
    for (let u = Math.min(a, b); u <= Math.max(a, b); u++) out.push(u);
  }
  return out;
}
