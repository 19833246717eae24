/**
 * CSV as RFC 4180 has it: fields separated by commas, records by CRLF or LF, a field in double
 * quotes may hold commas, line breaks and `""` for one quote. No library: this is the whole of it,
 * and the batch file is small (one row per account).
 */

/** One record: its fields, and the line of the file it starts on (1-based, for the messages). */
export interface CsvRecord {
  readonly line: number;
  readonly fields: string[];
}

/** Every record of `text`; a blank line is no record. Throws on an unterminated quote, with its line. */
export function parseCsv(text: string): CsvRecord[] {
  const out: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  let touched = false;
  const endRecord = (): void => {
    fields.push(field);
    if (touched || fields.length > 1 || field !== '') out.push({ line: start, fields });
    fields = [];
    field = '';
    touched = false;
  };
  const s = text.startsWith('\uFEFF') ? text.slice(1) : text; // a spreadsheet's byte-order mark
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      touched = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
      touched = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && s[i + 1] === '\n') i++;
      endRecord();
      line++;
      start = line;
    } else field += c;
  }
  if (quoted) throw new Error(`line ${start}: a quoted field is not closed`);
  if (field !== '' || fields.length > 0 || touched) endRecord();
  return out;
}

/** One CSV line (no line end): a field with a comma, a quote or a line break is quoted. */
export function csvLine(fields: readonly string[]): string {
  return fields.map((f) => (/[",\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(',');
}
