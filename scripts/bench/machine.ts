/** What the numbers were measured on. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  date: string;
  cpuModel: string;
  cores: number;
  ramGB: number;
  os: string;
  kernel: string;
  node: string;
  dovecot: string | null;
  mbsync: string | null;
  /** 1, 5 and 15 minute load averages when the run started */
  loadAverageAtStart: number[];
}

function firstLine(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) return null;
  return (r.stdout.trim().split('\n')[0] ?? '').trim() || null;
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    return m?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

export function describeMachine(dovecotBinary: string | undefined, mbsync: string | undefined): Machine {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    ramGB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    os: osName(),
    kernel: os.release(),
    node: process.version,
    dovecot: dovecotBinary === undefined ? null : firstLine(dovecotBinary, ['--version']),
    mbsync: mbsync ?? null,
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}

/** CPU seconds (own + reaped children) of a process, from /proc; null when unreadable. */
export function processTreeCpuS(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = [11, 12, 13, 14].map((i) => Number(fields[i])); // utime stime cutime cstime
    if (ticks.some((t) => !Number.isFinite(t))) return null;
    return ticks.reduce((n, t) => n + t, 0) / clockTicks();
  } catch {
    return null;
  }
}

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  ticksPerSecond ??= Number(firstLine('getconf', ['CLK_TCK']) ?? '100') || 100;
  return ticksPerSecond;
}
