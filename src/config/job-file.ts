import { readFileSync } from 'node:fs';
import { MailferryError, errnoCode } from '../domain/errors.js';

/**
 * `--config job.json`: a job file says what a command line can say, for cron and systemd.
 *
 *   { "command": "backup", "from": "imaps://me@imap.example.org", "passwordFile": "/home/me/.imap-pw",
 *     "to": ["maildir:/srv/backup/me"], "exclude": ["Junk"], "connections": 2, "quiet": true }
 *
 * Keys are the long flag names, kebab-case or camelCase; values are strings, numbers, booleans or
 * arrays of them (a repeatable flag). The file is turned into flags placed before the real command
 * line, so that one parser (yargs, strict) and one config loader check both the same way, and every
 * problem of the file itself (not JSON, a value of the wrong type, a secret written in it) is
 * reported at once before any network I/O. A flag given on the command line replaces the file's.
 * Secrets only by reference: a key that would hold a password or token is refused.
 */
export interface JobFile {
  /** The command named in the file, when the command line names none. */
  command?: string;
  /** Flags as argv words, to go before the command line's own flags. */
  argv: string[];
}

/** Keys that name a secret's value rather than where to find it. */
const SECRET_KEY = /(^|-)(password|passwd|pass|secret|token|access-token|refresh-token|client-secret)$/;

export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The `--config FILE` of a command line (either `--config FILE` or `--config=FILE`), if any. */
export function configPath(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') return undefined;
    if (a === '--config') return argv[i + 1];
    if (a.startsWith('--config=')) return a.slice('--config='.length);
  }
  return undefined;
}

/** Flag names given on a command line (kebab-case, without `no-`), to let them win over the file. */
function flagsGiven(argv: readonly string[]): Set<string> {
  const given = new Set<string>();
  for (const a of argv) {
    if (a === '--') break;
    const m = /^--(?:no-)?([^=]+)/.exec(a);
    if (m?.[1] !== undefined) given.add(kebab(m[1]));
  }
  return given;
}

export function readJobFile(path: string, argv: readonly string[]): JobFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e: unknown) {
    throw new MailferryError('usage', `cannot read --config file ${path}: ${errnoCode(e) ?? 'error'}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e: unknown) {
    throw new MailferryError('usage', `--config file ${path} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  return jobArgv(data, path, flagsGiven(argv));
}

/** Check the file's object and turn it into flags; every problem in one usage error. */
export function jobArgv(data: unknown, path: string, given: ReadonlySet<string> = new Set()): JobFile {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new MailferryError('usage', `--config file ${path} must hold a JSON object of flags`);
  }
  const { problems, ...job } = jobFlags(data as Record<string, unknown>, given);
  if (problems.length > 0) throw new MailferryError('usage', `--config ${path}: ${problems.join('; ')}`);
  return job;
}

/**
 * A job's object of flags as argv words, and every problem of it (a secret written in it, a value
 * of the wrong type): what a `--config` file and each row of a batch file (commands/batch.ts) say.
 */
export function jobFlags(data: Readonly<Record<string, unknown>>, given: ReadonlySet<string> = new Set()): JobFile & { problems: string[] } {
  const problems: string[] = [];
  const argv: string[] = [];
  let command: string | undefined;
  for (const [key, value] of Object.entries(data)) {
    const name = kebab(key);
    if (name === 'command') {
      if (typeof value === 'string' && value !== '') command = value;
      else problems.push(`"${key}" must be a command name such as "backup"`);
      continue;
    }
    if (name === 'config') {
      problems.push(`"${key}": a config file cannot name another`);
      continue;
    }
    if (SECRET_KEY.test(name)) {
      problems.push(`"${key}": secrets are not written in a config file; use ${name}-env, ${name}-file or ${name}-command`);
      continue;
    }
    if (given.has(name)) continue;
    const values = Array.isArray(value) ? (value as unknown[]) : [value];
    for (const v of values) {
      if (typeof v === 'string') argv.push(`--${name}`, v);
      else if (typeof v === 'number' && Number.isFinite(v)) argv.push(`--${name}`, String(v));
      else if (typeof v === 'boolean' && !Array.isArray(value)) argv.push(v ? `--${name}` : `--no-${name}`);
      else problems.push(`"${key}": expected a string, a number, a boolean or a list of strings`);
    }
  }
  return { ...(command === undefined ? {} : { command }), argv, problems };
}

/**
 * The command line with the job file's flags after it: the file's command goes first when the
 * command line names none (`mailferry --config job.json`); naming another one is a usage error,
 * except `verify` for a copy command's file.
 */
export function withJobFile(argv: readonly string[], job: JobFile): string[] {
  const first = argv[0];
  const named = first !== undefined && !first.startsWith('-') ? first : undefined;
  // `mailferry verify --config job.json` checks what the job (a backup, migrate or restore) copied.
  const verifies = named === 'verify' && ['backup', 'migrate', 'restore'].includes(job.command ?? '');
  if (job.command === undefined || named === job.command || verifies) return [...argv, ...job.argv];
  if (named !== undefined) throw new MailferryError('usage', `the command line says ${named}, the --config file says ${job.command}`);
  return [job.command, ...argv, ...job.argv];
}
