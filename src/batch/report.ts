import { EXIT } from '../domain/errors.js';
import { writeFileAtomic } from '../state/atomic.js';
import { csvLine } from './csv.js';

/**
 * The batch report: one entry per row run, as JSON lines (or CSV when the report's name ends in
 * `.csv`), rewritten atomically (state/atomic.ts) after every row, so that a worker killed at any
 * moment leaves the report of the rows it finished, whole, and never half a line. Nothing secret is
 * in it: the rows' secrets are references (a variable's or a file's name), and the identity and
 * error texts pass through the same redaction as every log line.
 */
export interface RowOutcome {
  row: number;
  line: number;
  command: string;
  source: string;
  destinations: readonly string[];
  /** ok, partial (exit 3), budget (8), differences (9: the copy ran, verify found some), failed, interrupted, not-run. */
  status: string;
  exit: number;
  messages: number;
  bytes: number;
  unchanged: number;
  vanished: number;
  skipped: number;
  seconds: number;
  started: string;
  error?: string;
  /** With --verify: whether the copy proved complete, and how many differences it found. */
  verify?: { ok: boolean; differences: number };
}

/** Exit codes from best to worst: the batch exits with its worst row's. */
const SEVERITY: readonly number[] = [
  EXIT.ok,
  EXIT.budget, // resumes on the next run by itself
  EXIT.partial, // the rest is done; a rerun retries what was skipped
  EXIT.differences,
  EXIT.locked, // another run holds it: the next batch will do it
  EXIT.network,
  EXIT.auth,
  EXIT.destination,
  EXIT.usage,
  EXIT.internal,
  EXIT.interrupted,
];

export function worstExit(codes: Iterable<number>): number {
  let worst: number = EXIT.ok;
  const rank = (c: number): number => {
    const i = SEVERITY.indexOf(c);
    return i < 0 ? SEVERITY.length : i;
  };
  for (const c of codes) if (rank(c) > rank(worst)) worst = c;
  return worst;
}

export function statusOf(exit: number): string {
  if (exit === EXIT.ok) return 'ok';
  if (exit === EXIT.partial) return 'partial';
  if (exit === EXIT.budget) return 'budget';
  if (exit === EXIT.differences) return 'differences';
  if (exit === EXIT.interrupted) return 'interrupted';
  return 'failed';
}

const COLUMNS = ['row', 'line', 'command', 'source', 'destinations', 'status', 'exit', 'messages', 'bytes', 'unchanged', 'vanished', 'skipped', 'seconds', 'started', 'verify', 'verify_differences', 'error'] as const;

export function reportText(outcomes: readonly RowOutcome[], csv: boolean): string {
  const sorted = [...outcomes].sort((a, b) => a.row - b.row);
  if (!csv) return sorted.map((o) => `${JSON.stringify(o)}\n`).join('');
  const cell = (o: RowOutcome, c: (typeof COLUMNS)[number]): string => {
    if (c === 'destinations') return o.destinations.join(' ');
    if (c === 'verify') return o.verify === undefined ? '' : o.verify.ok ? 'ok' : 'differences';
    if (c === 'verify_differences') return o.verify === undefined ? '' : String(o.verify.differences);
    const v = o[c];
    return v === undefined ? '' : String(v);
  };
  return [csvLine(COLUMNS), ...sorted.map((o) => csvLine(COLUMNS.map((c) => cell(o, c))))].map((l) => `${l}\r\n`).join('');
}

/** Writes the report after each row, one write at a time, the last one winning. */
export class ReportWriter {
  private chain: Promise<void> = Promise.resolve();
  constructor(
    readonly path: string,
    private readonly csv = /\.csv$/i.test(path),
  ) {}

  write(outcomes: readonly RowOutcome[]): Promise<void> {
    const text = reportText(outcomes, this.csv);
    this.chain = this.chain.then(() => writeFileAtomic(this.path, text, 0o600));
    return this.chain;
  }
}
