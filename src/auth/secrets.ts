import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { MailferryError, errnoCode } from '../domain/errors.js';
import { redact, registerSecret } from '../log/logger.js';

/**
 * Where a password comes from. Never argv: from an environment variable, a file (refused when others
 * may read it), or a command run without a shell whose output is trimmed. Each secret read is
 * registered with the logger's redaction so it cannot leak into a line we print.
 */
export type SecretRef = { env: string } | { file: string } | { command: string };

/** Variables that hold a secret of ours (named by a `--*-env` flag), read or not yet. */
const secretEnv = new Set<string>();

/**
 * A secret in environment variable `name`. Made by the config loader, before any command runs,
 * so that a `--password-command` run first never sees `--target-password-env`'s variable.
 */
export function envRef(name: string): SecretRef {
  secretEnv.add(name);
  return { env: name };
}

/**
 * The environment of a command we run (`--password-command`, `--oauth2-token-command`, ...):
 * ours without any other secret we hold: every variable named as a secret source, and every
 * variable whose value holds a secret already read (log/redact.ts).
 */
export function childEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || secretEnv.has(k) || redact(v) !== v) continue;
    out[k] = v;
  }
  return out;
}

/** `what` names the secret in messages ("password", "OAuth2 refresh token", ...). */
export function describeSecret(ref: SecretRef, what = 'password'): string {
  if ('env' in ref) return `environment variable ${ref.env}`;
  if ('file' in ref) return `${what} file ${ref.file}`;
  return `${what} command`;
}

export async function readSecret(ref: SecretRef, what = 'password'): Promise<string> {
  let value: string;
  if ('env' in ref) {
    secretEnv.add(ref.env);
    const v = process.env[ref.env];
    if (v === undefined || v === '') throw new MailferryError('usage', `environment variable ${ref.env} is not set`);
    value = v;
  } else if ('file' in ref) {
    try {
      const st = await stat(ref.file);
      if ((st.mode & 0o077) !== 0) {
        throw new MailferryError('usage', `${what} file ${ref.file} is readable by others; run: chmod 600 ${ref.file}`);
      }
      value = (await readFile(ref.file, 'utf8')).replace(/\r?\n$/, '');
    } catch (e: unknown) {
      if (e instanceof MailferryError) throw e;
      throw new MailferryError('usage', `cannot read ${what} file ${ref.file}: ${errnoCode(e) ?? 'error'}`);
    }
  } else {
    value = await runCommand(ref.command, `${what} command`);
  }
  if (value === '') throw new MailferryError('usage', `${describeSecret(ref, what)} gave an empty ${what}`);
  registerSecret(value);
  return value;
}

/** Split a command line into words (simple quoting with '' and ""), run without a shell. */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(command); m !== null; m = re.exec(command)) words.push(m[1] ?? m[2] ?? m[3] ?? '');
  return words;
}

/** Run a command line without a shell; its standard output, trimmed. Failure: a usage error naming `what`. */
export function runCommand(command: string, what: string): Promise<string> {
  const [file, ...args] = splitCommand(command);
  if (file === undefined) return Promise.reject(new MailferryError('usage', `${what} is empty`));
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 60_000, maxBuffer: 1 << 20, env: childEnv() }, (err, stdout) => {
      if (err) {
        reject(new MailferryError('usage', `${what} ${file} failed (${errnoCode(err) ?? `exit ${String(err.code ?? '?')}`})`));
        return;
      }
      resolve(stdout.trim());
    });
  });
}
