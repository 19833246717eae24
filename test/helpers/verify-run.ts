import { readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './cli.js';

/** A CLI run given `--json`: every stdout line parsed (the differences, then the summary). */
export interface JsonLinesRun {
  status: number | null;
  lines: Record<string, unknown>[];
  stdout: string;
  stderr: string;
}

export async function runJsonLines(args: string[], env: Record<string, string>): Promise<JsonLinesRun> {
  const r = await runCli(args, env, { timeoutMs: 180_000 });
  const lines = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { status: r.status, lines, stdout: r.stdout, stderr: r.stderr };
}

/** The differences verify printed that count (every kind but `known`). */
export const differences = (r: JsonLinesRun): Record<string, unknown>[] => r.lines.filter((l) => l['type'] === 'difference' && l['kind'] !== 'known');

/**
 * Damages a Maildir folder's `cur/` as verify must see it: `gone` removed, one byte of `altered`'s
 * Subject changed (size and mtime kept), \Flagged toggled in `flagged`'s name, a stray message
 * (Message-ID <stray@example.org>) added.
 */
export async function damageMaildir(cur: string, gone: string, altered: string, flagged: string): Promise<void> {
  await rm(join(cur, gone));
  const file = join(cur, altered);
  const st = await stat(file);
  const bytes = await readFile(file);
  const at = bytes.indexOf('Subject: ') + 9;
  bytes[at] = (bytes[at] as number) ^ 0x20;
  await writeFile(file, bytes);
  await utimes(file, st.atime, st.mtime);
  const info = flagged.slice(flagged.indexOf(':2,') + 3);
  const next = info.includes('F') ? info.replace('F', '') : [...info, 'F'].sort().join('');
  await rename(join(cur, flagged), join(cur, `${flagged.slice(0, flagged.indexOf(':2,') + 3)}${next}`));
  await writeFile(join(cur, '1700000000.stray.host,S=60:2,S'), STRAY);
}

export const STRAY = 'From: x@example.org\nSubject: stray\nMessage-ID: <stray@example.org>\n\nstray\n';
