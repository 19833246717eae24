/**
 * Compact, order-independent encoding of a set of message ids for the state file.
 * Numeric ids (IMAP UIDs) become IMAP-style ranges "1:5,7,9:12"; other ids (POP3 UIDLs) a list.
 */
export interface EncodedIds {
  uids?: string;
  names?: string[];
}

export function encodeIds(ids: Iterable<string>): EncodedIds {
  const nums: number[] = [];
  const names: string[] = [];
  for (const id of ids) {
    if (/^(0|[1-9]\d*)$/.test(id) && id.length < 16) nums.push(Number(id));
    else names.push(id);
  }
  const out: EncodedIds = {};
  if (nums.length > 0) out.uids = toRanges(nums);
  if (names.length > 0) out.names = names.sort();
  return out;
}

export function decodeIds(enc: EncodedIds | undefined): Set<string> {
  const set = new Set<string>();
  if (enc === undefined) return set;
  for (const part of (enc.uids ?? '').split(',')) {
    if (part === '') continue;
    const [a, b] = part.split(':');
    const lo = Number(a);
    const hi = b === undefined ? lo : Number(b);
    for (let n = lo; n <= hi; n++) set.add(String(n));
  }
  for (const n of enc.names ?? []) set.add(n);
  return set;
}

/** IMAP sequence-set syntax for sorted numbers: [1,2,3,5] -> "1:3,5". */
export function toRanges(nums: number[]): string {
  const sorted = [...new Set(nums)].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    const lo = sorted[i] as number;
    let hi = lo;
    while (i + 1 < sorted.length && sorted[i + 1] === hi + 1) {
      hi++;
      i++;
    }
    parts.push(lo === hi ? String(lo) : `${lo}:${hi}`);
    i++;
  }
  return parts.join(',');
}
