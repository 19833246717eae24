/**
 * `node dist/scripts/bench/verify-speed.js [--messages N] [--seed N] [--rounds N]`
 *
 * How long `mailferry verify` takes on loopback (issue 16 wants `--quick` well under a minute
 * for 20,000 messages): a throwaway Dovecot, the benchmark mailbox (scripts/bench/mailbox.ts,
 * default 20,000 messages, ~1 GB), one backup into Maildir and one into mbox, then `verify
 * --quick` and the full `verify` of each copy, `rounds` times (wall seconds and the child's peak
 * RSS; every verify must exit 0). Prints one JSON line per run and a table at the end.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startDovecot } from '../dev/dovecot.js';
import { seedMailbox } from '../dev/seed.js';
import { generateFolder, planMailbox } from './mailbox.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'mailferry.js');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
}

/** Runs the CLI; resolves with its exit code, wall seconds and peak RSS (MiB, VmHWM sampled). */
function timed(args: string[], env: Record<string, string>): Promise<{ status: number | null; seconds: number; rssMiB: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let peak = 0;
    const timer = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid ?? 0}/status`, 'utf8'));
        if (m !== null) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {
        // exited
      }
    }, 50);
    child.once('error', reject);
    child.once('close', (status) => {
      clearInterval(timer);
      resolve({ status, seconds: (performance.now() - started) / 1000, rssMiB: peak, stdout: out, stderr: err });
    });
  });
}

async function main(): Promise<void> {
  const messages = arg('messages', 20_000);
  const seed = arg('seed', 1);
  const rounds = arg('rounds', 1);
  const work = await mkdtemp(path.join(os.tmpdir(), 'mailferry-verify-speed-'));
  const server = await startDovecot({ users: [] });
  try {
    const user = { name: 'src', password: 'verify-speed-pw' };
    await server.addUser(user);
    const plans = planMailbox({ messages, seed });
    for (let i = 0; i < plans.length; i += 4) await seedMailbox(server, user, plans.slice(i, i + 4).map(generateFolder), { connections: 4 });
    const env = { PW: user.password, XDG_STATE_HOME: path.join(work, 'state') };
    const from = ['--from', `imaps://src@127.0.0.1:${server.imapsPort}`, '--ca', server.caFile, '--password-env', 'PW'];
    const rows: string[] = [];
    const record = (label: string, r: { status: number | null; seconds: number; rssMiB: number; stderr: string }): void => {
      if (r.status !== 0) throw new Error(`${label}: exit ${r.status}\n${r.stderr}`);
      process.stdout.write(`${JSON.stringify({ label, messages, seconds: Number(r.seconds.toFixed(2)), rssMiB: Math.round(r.rssMiB) })}\n`);
      rows.push(`| ${label} | ${r.seconds.toFixed(1)} | ${Math.round(r.rssMiB)} |`);
    };
    for (const format of ['maildir', 'mbox']) {
      const to = ['--to', `${format}:${path.join(work, format)}`];
      record(`backup IMAP->${format}`, await timed(['backup', ...from, ...to, '--json'], env));
      for (let round = 0; round < rounds; round++) {
        record(`verify --quick, ${format}`, await timed(['verify', '--quick', '--json', ...from, ...to], env));
        record(`verify (full), ${format}`, await timed(['verify', '--json', ...from, ...to], env));
      }
    }
    process.stdout.write(`\n${messages} messages, ${os.cpus().length} cores\n| run | wall s | peak RSS MiB |\n|---|---:|---:|\n${rows.join('\n')}\n`);
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
