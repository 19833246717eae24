import type { MessageMeta } from '../domain/message.js';

/**
 * Cut a folder's messages into fetch batches bounded by bytes and by count, so that memory is
 * bounded by bytes (batch bytes x connections), never by how many messages a folder holds.
 * A message larger than the budget travels alone.
 */
export function toBatches(metas: readonly MessageMeta[], maxBytes: number, maxCount: number): MessageMeta[][] {
  const out: MessageMeta[][] = [];
  let cur: MessageMeta[] = [];
  let bytes = 0;
  for (const m of metas) {
    const size = m.size ?? 0;
    if (cur.length > 0 && (bytes + size > maxBytes || cur.length >= maxCount)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(m);
    bytes += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
