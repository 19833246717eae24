import type { ImapFlow } from 'imapflow';
import { encodePath, formatDateTime, formatFlag, normalizePath } from 'imapflow/lib/tools.js';

/**
 * MULTIAPPEND (RFC 3502): several messages in one APPEND command, which the server stores in one
 * transaction, all or none. imapflow 2.1.2 has no such call, so this builds the command the way
 * its own `append` does (commands/append.js: the same path encoding, flag and date formats) and
 * runs it through the client's command executor, which sends the literals (non-synchronizing with
 * LITERAL+). Measured on the test Dovecot (1000 messages of 3 KB into one folder): one APPEND
 * each 6.5 s, MULTIAPPEND of 100 at a time 0.9 s.
 *
 * The client's `exec` is not in imapflow's type declarations: this file is the one place that
 * reaches it, through the narrow type below, and checks that it exists (`canMultiAppend`).
 */
export interface AppendItem {
  raw: Buffer;
  flags: readonly string[];
  date?: Date;
}

export interface MultiAppended {
  uidValidity?: bigint;
  /** Target UIDs in the order of the items, when the server sent APPENDUID (UIDPLUS). */
  uids?: number[];
}

type Attribute = { type: string; value: unknown; isLiteral8?: boolean } | Attribute[];

interface Executor {
  exec(command: string, attributes: Attribute[], options: Record<string, unknown>): Promise<ExecResponse>;
  capabilities: Map<string, unknown>;
}

interface ExecResponse {
  response: { attributes?: { section?: { type: string; value: unknown }[] }[] };
  next(): void;
}

function executor(client: ImapFlow): Executor | undefined {
  const c = client as unknown as Partial<Executor>;
  return typeof c.exec === 'function' && c.capabilities instanceof Map ? (c as Executor) : undefined;
}

/** The server takes MULTIAPPEND and the client can send it. */
export function canMultiAppend(client: ImapFlow): boolean {
  const c = executor(client);
  return c !== undefined && c.capabilities.has('MULTIAPPEND');
}

/** One MULTIAPPEND of `items` into `path`; rejects as imapflow's commands do (NO/BAD carry responseStatus). */
export async function multiAppend(client: ImapFlow, path: string, items: readonly AppendItem[]): Promise<MultiAppended> {
  const c = executor(client);
  if (c === undefined) throw new Error('imapflow has no command executor');
  const attributes: Attribute[] = [{ type: 'ATOM', value: encodePath(client, normalizePath(client, path)) }];
  const binary = c.capabilities.has('BINARY');
  for (const item of items) {
    const flags = item.flags.map((f) => formatFlag(f)).filter((f): f is string => f !== false);
    attributes.push(flags.map((f) => ({ type: 'ATOM', value: f })));
    const date = item.date === undefined ? undefined : formatDateTime(item.date);
    if (date !== undefined) attributes.push({ type: 'STRING', value: date });
    attributes.push({ type: 'LITERAL', value: item.raw, isLiteral8: binary && item.raw.includes(0) });
  }
  const res = await c.exec('APPEND', attributes, {});
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
