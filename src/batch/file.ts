import { readFileSync } from 'node:fs';
import { jobFlags, kebab } from '../config/job-file.js';
import { errnoCode, MailferryError } from '../domain/errors.js';
import { parseCsv } from './csv.js';

/** Flags of the batch itself, not of a row. */
export const BATCH_ONLY = new Set(['json', 'quiet', 'q', 'debug', 'log-file', 'help', 'h', 'version', 'show-hidden', 'jobs', 'shard', 'shards', 'report']);

/**
 * The batch file: one row per job, as a CSV with a header or as JSON lines (a `.jsonl`/`.ndjson`
 * name, or a first character `{`). Every row is a job file's object (config/job-file.ts): a
 * `command` key and the long flag names of that command, kebab-case or camelCase.
 *
 * CSV: the header names the columns; an empty cell is a flag not given; `true`/`false` are a
 * boolean flag's value; a repeatable flag (`to`, `archive`, `exclude`) takes one column per value,
 * the column named again (`to,to`). JSON lines: one object per line, arrays for repeatable flags.
 * A `--config` job file holding several jobs (`{"quiet": true, "jobs": [{...}, {...}]}`: a JSON
 * object with a `jobs` list) is read the same way: each job is a row, the other keys of the object
 * go into every job unless the job gives them itself (jobsFileRows).
 * What the rows mean is checked later, all rows together (commands/batch.ts); this file only turns
 * text into rows, and lists every problem of the text itself.
 */
export interface BatchRow {
  /** 1-based, in file order: the row's number in messages and in the report. */
  readonly row: number;
  /** The line of the file the row starts on; 0 for a job of a `jobs` list (its place is its row). */
  readonly line: number;
  readonly data: Record<string, unknown>;
}

export function readBatchFile(path: string): { rows: BatchRow[]; problems: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e: unknown) {
    throw new MailferryError('usage', `cannot read the batch file ${path}: ${errnoCode(e) ?? 'error'}`);
  }
  const jobs = jobsObject(text);
  if (jobs !== undefined) return jobsFileRows(jobs);
  const jsonLines = /\.(jsonl|ndjson)$/i.test(path) || (!/\.csv$/i.test(path) && text.trimStart().startsWith('{'));
  return jsonLines ? jsonRows(text) : csvRows(text);
}

/** The file's object when the whole text is one JSON object with a `jobs` key, else undefined. */
export function jobsObject(text: string): Record<string, unknown> | undefined {
  try {
    const data: unknown = JSON.parse(text);
    return typeof data === 'object' && data !== null && !Array.isArray(data) && 'jobs' in data ? (data as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A `jobs` list as rows, each job with the object's other keys as defaults. */
export function jobsFileRows(file: Readonly<Record<string, unknown>>): { rows: BatchRow[]; problems: string[] } {
  const { jobs, ...rest } = file;
  // The run's own flags (--quiet, --log-file...) are the batch's: jobsCommandLine puts them there.
  const shared = Object.fromEntries(Object.entries(rest).filter(([k]) => !BATCH_ONLY.has(kebab(k))));
  if (!Array.isArray(jobs) || jobs.length === 0) return { rows: [], problems: ['"jobs" must be a list of job objects (one per job: a "command" and its flags)'] };
  const rows: BatchRow[] = [];
  const problems: string[] = [];
  jobs.forEach((job: unknown, i) => {
    if (typeof job !== 'object' || job === null || Array.isArray(job)) problems.push(`job ${i + 1}: must be a JSON object of flags`);
    else rows.push({ row: i + 1, line: 0, data: { ...shared, ...(job as Record<string, unknown>) } });
  });
  return { rows, problems };
}

export function jsonRows(text: string): { rows: BatchRow[]; problems: string[] } {
  const rows: BatchRow[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const t = raw.trim();
    if (t === '') return;
    const line = i + 1;
    try {
      const data: unknown = JSON.parse(t);
      if (typeof data !== 'object' || data === null || Array.isArray(data)) problems.push(`line ${line}: must be a JSON object of flags`);
      else rows.push({ row: rows.length + 1, line, data: data as Record<string, unknown> });
    } catch (e: unknown) {
      problems.push(`line ${line}: not JSON (${e instanceof Error ? e.message : String(e)})`);
    }
  });
  return { rows, problems };
}

export function csvRows(text: string): { rows: BatchRow[]; problems: string[] } {
  let records;
  try {
    records = parseCsv(text);
  } catch (e: unknown) {
    return { rows: [], problems: [e instanceof Error ? e.message : String(e)] };
  }
  const [header, ...body] = records;
  if (header === undefined) return { rows: [], problems: [] };
  const problems: string[] = [];
  const names = header.fields.map((f) => f.trim());
  names.forEach((n, i) => {
    if (n === '') problems.push(`line ${header.line}: column ${i + 1} has no name`);
  });
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  const rows: BatchRow[] = [];
  for (const r of body) {
    if (r.fields.length > names.length) {
      problems.push(`line ${r.line}: ${r.fields.length} fields, the header names ${names.length}`);
      continue;
    }
    const data: Record<string, unknown> = {};
    r.fields.forEach((cell, i) => {
      const name = names[i] ?? '';
      const v = cell.trim();
      if (name === '' || v === '') return;
      const value = v === 'true' ? true : v === 'false' ? false : v;
      if ((counts.get(name) ?? 0) > 1) ((data[name] ??= []) as unknown[]).push(value);
      else data[name] = value;
    });
    rows.push({ row: rows.length + 1, line: r.line, data });
  }
  return { rows, problems };
}

/**
 * `mailferry --config FILE` where FILE holds several jobs: the command line that runs them, one
 * after the other, as a batch (`batch FILE --jobs 1`, one lock, state and summary line each, the
 * exit code the worst job's; no report file unless `--report`), with the file's own run flags
 * (`quiet`, `logFile`, `json`, `debug`) and the command line's. Undefined when FILE is not such a
 * file (a job file of one job, or not JSON: config/job-file.ts says what is wrong with it).
 */
export function jobsCommandLine(path: string, cmdline: readonly string[]): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const file = jobsObject(text);
  if (file === undefined) return undefined;
  const named = cmdline[0] !== undefined && !cmdline[0].startsWith('-') ? cmdline[0] : undefined;
  if (named !== undefined) throw new MailferryError('usage', `--config ${path} holds several jobs, each naming its command: run it as mailferry --config FILE, without "${named}"`);
  const run = Object.fromEntries(Object.entries(file).filter(([k]) => k !== 'jobs' && BATCH_ONLY.has(kebab(k))));
  const { argv, problems } = jobFlags(run);
  if (problems.length > 0) throw new MailferryError('usage', `--config ${path}: ${problems.join('; ')}`);
  const rest: string[] = [];
  for (let i = 0; i < cmdline.length; i++) {
    const a = cmdline[i] ?? '';
    if (a === '--config') i++;
    else if (!a.startsWith('--config=')) rest.push(a);
  }
  return ['batch', path, '--jobs', '1', '--of-config', ...argv, ...rest];
}
