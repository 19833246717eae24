import { createHash } from 'node:crypto';
import { kebab } from '../config/job-file.js';

/**
 * Which rows a worker runs. A row's identity is its command, its source and its destinations, as
 * the file writes them; its shard is a hash of that identity (SHA-256, the first 48 bits, modulo
 * the shard count), so any number of workers given the same file and `--shard I/N` split it with
 * no coordinator and no shared state: the split does not depend on the order of the rows, on the
 * machine, nor on the other columns (a row whose `--connections` is changed stays where it was).
 */
export interface RowIdentity {
  readonly command: string;
  /** `from`, or `user` (with `protocol` when given). */
  readonly source: string;
  /** `to`, `archive`, `target-user`, `smtp` and `rcpt`, each as `flag=value`, sorted. */
  readonly destinations: readonly string[];
}

export interface Shard {
  /** 1-based. */
  readonly index: number;
  readonly count: number;
}

const DESTINATIONS = ['to', 'archive', 'target-user', 'smtp', 'rcpt'];

export function rowIdentity(data: Readonly<Record<string, unknown>>): RowIdentity {
  const flags = new Map<string, unknown>(Object.entries(data).map(([k, v]) => [kebab(k), v]));
  const text = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)]);
  const command = text(flags.get('command'))[0] ?? '';
  const from = text(flags.get('from'))[0];
  const user = text(flags.get('user'))[0];
  const protocol = text(flags.get('protocol'))[0];
  const source = from ?? (user === undefined ? '' : `${protocol ?? 'imap'}:${user}`);
  const destinations = DESTINATIONS.flatMap((k) => text(flags.get(k)).map((v) => `${k}=${v}`)).sort();
  return { command, source, destinations };
}

/** A stable key for the identity: the same text on every machine and in every run. */
export function identityKey(id: RowIdentity): string {
  return JSON.stringify([id.command, id.source, id.destinations]);
}

/** The shard (1-based, of `count`) a row falls in. */
export function shardOf(id: RowIdentity, count: number): number {
  const digest = createHash('sha256').update(identityKey(id)).digest();
  return (digest.readUIntBE(0, 6) % count) + 1;
}

/**
 * `--shard I/N`, or `--shards N` with the index from $JOB_COMPLETION_INDEX (0-based: a
 * Kubernetes Indexed Job's pod N-1 runs shard N); undefined: every row. Problems are added.
 */
export function parseShard(problems: string[], shard: string | undefined, shards: number | undefined, env: NodeJS.ProcessEnv = process.env): Shard | undefined {
  if (shard !== undefined) {
    const m = /^(\d+)\/(\d+)$/.exec(shard.trim());
    const index = Number(m?.[1]);
    const count = Number(m?.[2]);
    if (m === null || !(count >= 1 && index >= 1 && index <= count)) {
      problems.push(`--shard ${shard}: expected I/N with 1 <= I <= N, e.g. --shard 2/4`);
      return undefined;
    }
    if (shards !== undefined && shards !== count) problems.push(`--shard ${shard} and --shards ${shards} disagree`);
    return { index, count };
  }
  if (shards === undefined) return undefined;
  if (!Number.isInteger(shards) || shards < 1) {
    problems.push('--shards must be a whole number of at least 1');
    return undefined;
  }
  const text = env['JOB_COMPLETION_INDEX'];
  if (text === undefined || !/^\d+$/.test(text)) {
    problems.push(`--shards ${shards} without --shard takes the index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job), which is ${text === undefined ? 'not set' : `"${text}"`}`);
    return undefined;
  }
  const index = Number(text) + 1;
  if (index > shards) {
    problems.push(`JOB_COMPLETION_INDEX ${text} is out of range for --shards ${shards} (0..${shards - 1})`);
    return undefined;
  }
  return { index, count: shards };
}
