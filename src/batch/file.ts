import { readFileSync } from 'node:fs';
import { errnoCode, MailferryError } from '../domain/errors.js';
import { parseCsv } from './csv.js';

/**
 * The batch file: one row per job, as a CSV with a header or as JSON lines (a `.jsonl`/`.ndjson`
 * name, or a first character `{`). Every row is a job file's object (config/job-file.ts): a
 * `command` key and the long flag names of that command, kebab-case or camelCase.
 *
 * CSV: the header names the columns; an empty cell is a flag not given; `true`/`false` are a
 * boolean flag's value; a repeatable flag (`to`, `archive`, `exclude`) takes one column per value,
 * the column named again (`to,to`). JSON lines: one object per line, arrays for repeatable flags.
 * What the rows mean is checked later, all rows together (commands/batch.ts); this file only turns
 * text into rows, and lists every problem of the text itself.
 */
export interface BatchRow {
  /** 1-based, in file order: the row's number in messages and in the report. */
  readonly row: number;
  /** The line of the file the row starts on. */
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
  const jsonLines = /\.(jsonl|ndjson)$/i.test(path) || (!/\.csv$/i.test(path) && text.trimStart().startsWith('{'));
  return jsonLines ? jsonRows(text) : csvRows(text);
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
