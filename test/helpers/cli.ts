/**
 * Runs the real CLI (`node bin/mailferry.js ...`) as a child process, asynchronously, so a test
 * can act (kick sessions, watch files) while it runs. The child gets the parent's environment plus
 * `env`, and XDG_STATE_HOME set to a directory of this test process's own unless `env` gives one:
 * two test runs on one machine never share a state directory or its lock. It is SIGKILLed when it outlives `timeoutMs` (the result then has signal 'SIGKILL' and
 * `timedOut: true`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root: this file is dist/test/helpers/cli.js once built. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI_BIN = path.join(REPO_ROOT, 'bin', 'mailferry.js');

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** wall-clock milliseconds */
  ms: number;
}

export interface CliOptions {
  /** default 60 s */
  timeoutMs?: number;
  cwd?: string;
  /** called right after spawn, e.g. to watch the child's pid */
  onSpawn?: (child: ChildProcess) => void;
  /** run node through this command, e.g. `['bash', '-c', 'ulimit -f 1024; exec "$0" "$@"']` */
  prefix?: readonly string[];
}

/** This test process's state home (under the system temp dir), made on first use. */
let stateHome: string | undefined;
function ownStateHome(): string {
  if (stateHome === undefined) {
    const dir = mkdtempSync(path.join(tmpdir(), 'mf-state-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    stateHome = dir;
  }
  return stateHome;
}

export function runCli(args: string[], env: Record<string, string> = {}, opts: CliOptions = {}): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const [cmd, ...pre] = [...(opts.prefix ?? []), process.execPath];
    const child = spawn(cmd as string, [...pre, CLI_BIN, ...args], {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, XDG_STATE_HOME: ownStateHome(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({
        status,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        ms: Date.now() - started,
      });
    });
    opts.onSpawn?.(child);
  });
}

export interface JsonResult {
  status: number | null;
  /** The last stdout line parsed as JSON (the summary or plan of `--json`); {} when there is none. */
  out: Record<string, unknown>;
  stderr: string;
}

/** runCli for a command given `--json`: its summary object, exit status and stderr. */
export async function runCliJson(args: string[], env: Record<string, string> = {}, opts: CliOptions = {}): Promise<JsonResult> {
  const r = await runCli(args, env, { timeoutMs: 120_000, ...opts });
  return { status: r.status, out: lastJson(r.stdout), stderr: r.stderr };
}

/** The last line of a `--json` run's stdout (its summary or plan; progress lines come before it); {} when empty. */
export function lastJson(stdout: string): Record<string, unknown> {
  const line = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line === '' ? '{}' : line) as Record<string, unknown>;
}
