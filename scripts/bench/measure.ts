/**
 * Runs one command and measures it: wall time (our own clock, around the whole child), and the
 * child's CPU time (user + sys) and peak RSS from GNU time (`/usr/bin/time -v`, Debian package
 * `time`), which reads them from wait4()'s rusage of the child and the children it waited for.
 * Node cannot give a child's rusage, so without GNU time those two stay null.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const GNU_TIME = '/usr/bin/time';

export interface Measured {
  wallS: number;
  /** user + sys of the child and its waited-for descendants; null without GNU time */
  cpuS: number | null;
  userS: number | null;
  sysS: number | null;
  /** peak resident set size of the largest process, MB (10^6 bytes); null without GNU time */
  peakRssMB: number | null;
  status: number | null;
  stdout: string;
  stderr: string;
}

/** True when GNU time is there (installing Debian's `time` when missing and root). */
export function ensureGnuTime(log: (s: string) => void): boolean {
  if (existsSync(GNU_TIME)) return true;
  if (!aptInstall(['time'], log)) return false;
  return existsSync(GNU_TIME);
}

/** apt-get install when running as root; false (with a note) otherwise. */
export function aptInstall(packages: string[], log: (s: string) => void): boolean {
  if (process.getuid?.() !== 0) {
    log(`not root: cannot install ${packages.join(' ')} (apt-get install ${packages.join(' ')})`);
    return false;
  }
  log(`installing ${packages.join(' ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: 'ignore', env });
  return r.status === 0;
}

interface TimeV {
  userS: number;
  sysS: number;
  maxRssKB: number;
}

function parseTimeV(text: string): TimeV | undefined {
  const num = (label: string): number | undefined => {
    const m = new RegExp(`^\\s*${label}:\\s*([0-9.]+)\\s*$`, 'm').exec(text);
    return m?.[1] === undefined ? undefined : Number(m[1]);
  };
  const userS = num('User time \\(seconds\\)');
  const sysS = num('System time \\(seconds\\)');
  const maxRssKB = num('Maximum resident set size \\(kbytes\\)');
  if (userS === undefined || sysS === undefined || maxRssKB === undefined) return undefined;
  return { userS, sysS, maxRssKB };
}

export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** measure with GNU time (default: when it exists) */
  gnuTime?: boolean;
}

export async function measure(argv: string[], opts: RunOptions = {}): Promise<Measured> {
  const useTime = (opts.gnuTime ?? true) && existsSync(GNU_TIME);
  const timeFile = path.join(os.tmpdir(), `mf-bench-time-${process.pid}-${Date.now()}.txt`);
  const full = useTime ? [GNU_TIME, '-v', '-o', timeFile, ...argv] : argv;
  const [cmd, ...args] = full;
  if (cmd === undefined) throw new Error('measure: empty command');
  const started = performance.now();
  const { status, stdout, stderr } = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.once('error', reject);
    child.once('close', (code) =>
      resolve({ status: code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
  });
  const wallS = (performance.now() - started) / 1000;
  let t: TimeV | undefined;
  if (useTime) {
    t = parseTimeV(await readFile(timeFile, 'utf8').catch(() => ''));
    await rm(timeFile, { force: true });
  }
  return {
    wallS,
    cpuS: t === undefined ? null : t.userS + t.sysS,
    userS: t?.userS ?? null,
    sysS: t?.sysS ?? null,
    peakRssMB: t === undefined ? null : (t.maxRssKB * 1024) / 1e6,
    status,
    stdout,
    stderr,
  };
}
