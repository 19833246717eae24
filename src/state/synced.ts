import { decodeIds, encodeIds, type EncodedIds } from './ids.js';

/**
 * What an IMAP target's checkpoint keeps per source message for carrying flag changes (compact,
 * since a folder may hold 100,000 messages):
 *
 * - the flags last written to the target, grouped by flag set: `{ "\\Seen": {uids: "1:90"}, "": ... }`
 *   (a folder has few distinct flag sets, so this is about as small as the id set itself);
 * - the target UID of each source message, as runs `[sourceId, targetUid, count]`: source ids
 *   n..n+count-1 are target UIDs t..t+count-1 (APPENDUID of messages appended in order gives long
 *   runs); a non-numeric source id (a Maildir name) is a run of one.
 */
export type FlagSetsJson = Record<string, EncodedIds>;
export type UidRunsJson = [string | number, number, number][];

/** A flag set as one string: sorted, space-separated, \Recent left out (only a server sets it). */
export function flagKey(flags: Iterable<string>): string {
  return [...new Set([...flags].filter((f) => f.toLowerCase() !== '\\recent'))].sort().join(' ');
}

export function flagsOfKey(key: string): string[] {
  return key === '' ? [] : key.split(' ');
}

export function encodeFlagSets(flags: ReadonlyMap<string, string>): FlagSetsJson {
  const byKey = new Map<string, string[]>();
  for (const [id, key] of flags) byKey.set(key, [...(byKey.get(key) ?? []), id]);
  const out: FlagSetsJson = {};
  for (const key of [...byKey.keys()].sort()) out[key] = encodeIds(byKey.get(key) ?? []);
  return out;
}

export function decodeFlagSets(json: FlagSetsJson): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, ids] of Object.entries(json)) for (const id of decodeIds(ids)) out.set(id, key);
  return out;
}

const numeric = (id: string): boolean => /^(0|[1-9]\d*)$/.test(id) && id.length < 16;

export function encodeUidRuns(uids: ReadonlyMap<string, number>): UidRunsJson {
  const nums = [...uids].filter(([id]) => numeric(id)).sort(([a], [b]) => Number(a) - Number(b));
  const runs: UidRunsJson = [];
  for (const [id, uid] of nums) {
    const last = runs[runs.length - 1];
    if (last !== undefined && typeof last[0] === 'number' && last[0] + last[2] === Number(id) && last[1] + last[2] === uid) last[2]++;
    else runs.push([Number(id), uid, 1]);
  }
  for (const [id, uid] of [...uids].filter(([i]) => !numeric(i)).sort(([a], [b]) => (a < b ? -1 : 1))) runs.push([id, uid, 1]);
  return runs;
}

export function decodeUidRuns(json: UidRunsJson): Map<string, number> {
  const out = new Map<string, number>();
  for (const [id, uid, count] of json) {
    if (typeof id === 'string') out.set(id, uid);
    else for (let i = 0; i < count; i++) out.set(String(id + i), uid + i);
  }
  return out;
}
