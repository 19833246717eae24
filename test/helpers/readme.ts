/**
 * The shell examples of a Markdown file, as a test reads them: every `mailferry` command line in
 * a ```sh, ```cron or ```ini block (lines continued with `\` joined; a crontab line's schedule, a
 * systemd `ExecStart=/usr/bin/env`, `VAR=value` prefixes and a trailing `# comment` left out),
 * split into words as a POSIX shell would for these simple lines (single and double quotes, no
 * expansion), and the JSON blocks (job files).
 */
import { readFileSync } from 'node:fs';

export interface Example {
  /** 1-based line of the README where the command starts. */
  line: number;
  /** As written, for messages. */
  text: string;
  /** `VAR=value` words before the command. */
  env: Record<string, string>;
  /** The words after `mailferry` (an ellipsis "…" left out). */
  argv: string[];
}

const SHELL_BLOCKS = new Set(['sh', 'cron', 'ini']);

/** The fenced blocks of `markdown`: language, first line (1-based) and lines. */
export function blocks(markdown: string): { lang: string; line: number; lines: string[] }[] {
  const out: { lang: string; line: number; lines: string[] }[] = [];
  let open: { lang: string; line: number; lines: string[] } | undefined;
  markdown.split('\n').forEach((text, i) => {
    const fence = /^```(\S*)\s*$/.exec(text);
    if (fence !== null) {
      if (open === undefined) open = { lang: fence[1] ?? '', line: i + 2, lines: [] };
      else {
        out.push(open);
        open = undefined;
      }
    } else open?.lines.push(text);
  });
  return out;
}

export function readmeExamples(path: string): Example[] {
  const out: Example[] = [];
  for (const b of blocks(readFileSync(path, 'utf8'))) {
    if (!SHELL_BLOCKS.has(b.lang)) continue;
    for (let i = 0; i < b.lines.length; i++) {
      const start = i;
      let text = b.lines[i] ?? '';
      while (text.endsWith('\\') && i + 1 < b.lines.length) text = `${text.slice(0, -1)} ${(b.lines[++i] ?? '').trim()}`;
      const words = shellWords(text);
      const at = words.findIndex((w) => /(^|\/)mailferry(\.js)?$/.test(w));
      if (at < 0 || words[0]?.startsWith('#') === true) continue;
      const env: Record<string, string> = {};
      for (const w of words.slice(0, at)) {
        const kv = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(w);
        if (kv !== null) env[kv[1] as string] = kv[2] as string;
      }
      const rest = words.slice(at + 1);
      const end = rest.findIndex((w) => w.startsWith('#') || ['|', '||', '&&', ';', '>', '>>', '2>&1'].includes(w));
      const argv = (end < 0 ? rest : rest.slice(0, end)).filter((w) => w !== '…');
      out.push({ line: b.line + start, text: text.trim(), env, argv });
    }
  }
  return out;
}

/** The JSON blocks of the file, parsed. */
export function readmeJson(path: string): { line: number; value: unknown }[] {
  return blocks(readFileSync(path, 'utf8'))
    .filter((b) => b.lang === 'json')
    .map((b) => ({ line: b.line, value: JSON.parse(b.lines.join('\n')) as unknown }));
}

/** Words of one simple shell line: blanks split, quotes group ('…' literally, "…" with \" and \\). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === ' ' || c === '\t') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const close = line.indexOf("'", i + 1);
      word = (word ?? '') + line.slice(i + 1, close < 0 ? line.length : close);
      i = close < 0 ? line.length : close;
    } else if (c === '"') {
      let s = '';
      for (i++; i < line.length && line[i] !== '"'; i++) s += line[i] === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\') ? (line[++i] as string) : line[i];
      word = (word ?? '') + s;
    } else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}
