/**
 * Where an mbox archive's recorded messages are, kept small enough to rewrite with every commit:
 * runs `{ at, id, count }`, each `count` messages one after another in the file from the From_
 * line at byte `at`, holding source ids `id`, id+1, ... (a non-numeric id, a POP3 UIDL, is a run
 * of one). A transaction appends its messages contiguously, so a backup in UID order costs one
 * run per transaction, where an offset per message cost 4.7 MB of state for 100,000 messages
 * (600 ms a save). Stored as `[at, id, count]` triples.
 */
export interface PlacedRun {
  at: number;
  id: string;
  count: number;
}

export type PlacedJson = [number, string | number, number][];

const numeric = (id: string): boolean => /^(0|[1-9]\d*)$/.test(id) && id.length < 16;

/**
 * Add the message of `id` whose From_ line is at `at` to `runs`, written right after the last
 * message added (the caller starts a fresh list where that is not so: each transaction).
 */
export function place(runs: PlacedRun[], id: string, at: number): void {
  const last = runs[runs.length - 1];
  if (last !== undefined && numeric(last.id) && numeric(id) && Number(last.id) + last.count === Number(id)) last.count++;
  else runs.push({ at, id, count: 1 });
}

/**
 * `runs` followed by a transaction's `more`. Where `contiguous` (the transaction's first message
 * was written right after the last run's last message, as the writer knows) and the ids go on, the
 * two runs become one: the same messages then give the same runs whatever the batch sizes were (a
 * migrate's small batches and a backup's one batch record the same state).
 */
export function joinRuns(runs: readonly PlacedRun[], more: readonly PlacedRun[], contiguous: boolean): PlacedRun[] {
  const out = runs.map((r) => ({ ...r }));
  const last = out[out.length - 1];
  const [first, ...rest] = more;
  if (contiguous && last !== undefined && first !== undefined && numeric(last.id) && numeric(first.id) && Number(last.id) + last.count === Number(first.id)) {
    last.count += first.count;
    out.push(...rest.map((r) => ({ ...r })));
  } else out.push(...more.map((r) => ({ ...r })));
  return out;
}

/**
 * The source id of each message, by the offset of its From_ line; `offsets` are every message's
 * in the file, ascending. A run that starts nowhere (the file changed) gives nothing.
 */
export function placedIds(runs: readonly PlacedRun[], offsets: readonly number[]): Map<number, string> {
  const index = new Map(offsets.map((o, i) => [o, i]));
  const out = new Map<number, string>();
  for (const r of runs) {
    const first = index.get(r.at);
    if (first === undefined) continue;
    for (let k = 0; k < r.count && first + k < offsets.length; k++) {
      out.set(offsets[first + k] as number, r.count === 1 ? r.id : String(Number(r.id) + k));
    }
  }
  return out;
}

export function encodePlaced(runs: readonly PlacedRun[]): PlacedJson {
  return runs.map((r) => [r.at, numeric(r.id) ? Number(r.id) : r.id, r.count]);
}

/** undefined when `json` is not such a list (the caller names the file in its error). */
export function decodePlaced(json: unknown): PlacedRun[] | undefined {
  if (!Array.isArray(json)) return undefined;
  const out: PlacedRun[] = [];
  for (const r of json as unknown[]) {
    if (!Array.isArray(r) || r.length !== 3) return undefined;
    const [at, id, count] = r as unknown[];
    if (typeof at !== 'number' || typeof count !== 'number' || !(count >= 1) || (typeof id !== 'string' && typeof id !== 'number')) return undefined;
    out.push({ at, id: String(id), count });
  }
  return out;
}
