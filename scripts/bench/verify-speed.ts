/**
 * `node dist/scripts/bench/verify-speed.js [--messages N] [--seed N] [--rounds N] [--only maildir|mbox] [--quick-only]`
 *
 * How long `mailferry verify` takes on loopback (issue 16 wants `--quick` well under a minute
 * for 20,000 messages): a throwaway Dovecot, the benchmark mailbox (scripts/bench/mailbox.ts,
 * default 20,000 messages, ~1 GB), one backup into Maildir and one into mbox, then `verify
 * --quick` and the full `verify` of each copy, `rounds` times (wall seconds and the child's peak
 * RSS; every verify must exit 0). The Maildir copy's `--quick` is timed twice: as written (names
 * with W=, header blocks read) and with W= taken out of every name, as an archive written before
 * W= was (each file read whole for its wire size). Prints one JSON line per run and a table.
 */
import { mkdtemp, readdir, rename, rm } from 'node:fs/promises';
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

/**
 * Runs the CLI; resolves with its exit code, wall seconds, peak RSS (MiB, VmHWM sampled) and the
 * bytes it read (MiB, /proc rchar sampled: files and sockets, page cache or not).
 */
function timed(args: string[], env: Record<string, string>): Promise<{ status: number | null; seconds: number; rssMiB: number; readMiB: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let peak = 0;
    let read = 0;
    const timer = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid ?? 0}/status`, 'utf8'));
        if (m !== null) peak = Math.max(peak, Number(m[1]) / 1024);
        const io = /rchar:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid ?? 0}/io`, 'utf8'));
        if (io !== null) read = Math.max(read, Number(io[1]) / 1048576);
      } catch {
        // exited
      }
    }, 50);
    child.once('error', reject);
    child.once('close', (status) => {
      clearInterval(timer);
      resolve({ status, seconds: (performance.now() - started) / 1000, rssMiB: peak, readMiB: read, stdout: out, stderr: err });
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
    const record = (label: string, r: { status: number | null; seconds: number; rssMiB: number; readMiB: number; stderr: string }): void => {
      if (r.status !== 0) throw new Error(`${label}: exit ${r.status}\n${r.stderr}`);
      const load = os.loadavg()[0]?.toFixed(1);
      process.stdout.write(`${JSON.stringify({ label, messages, seconds: Number(r.seconds.toFixed(2)), rssMiB: Math.round(r.rssMiB), readMiB: Math.round(r.readMiB), load })}\n`);
      rows.push(`| ${label} | ${r.seconds.toFixed(1)} | ${Math.round(r.rssMiB)} | ${Math.round(r.readMiB)} | ${load} |`);
    };
    const only = process.argv.indexOf('--only') === -1 ? undefined : process.argv[process.argv.indexOf('--only') + 1];
    const quickOnly = process.argv.includes('--quick-only');
    for (const format of ['maildir', 'mbox'].filter((f) => only === undefined || f === only)) {
      const dir = path.join(work, format);
      const to = ['--to', `${format}:${dir}`];
      record(`backup IMAP->${format}`, await timed(['backup', ...from, ...to, '--json'], env));
      for (let round = 0; round < rounds; round++) {
        record(`verify --quick, ${format}`, await timed(['verify', '--quick', '--json', ...from, ...to], env));
        if (!quickOnly) record(`verify (full), ${format}`, await timed(['verify', '--json', ...from, ...to], env));
      }
      if (format !== 'maildir') continue;
      await stripWireSizes(dir);
      for (let round = 0; round < rounds; round++) {
        record('verify --quick, maildir without W=', await timed(['verify', '--quick', '--json', ...from, ...to], env));
      }
    }
    process.stdout.write(`\n${messages} messages, ${os.cpus().length} cores\n| run | wall s | peak RSS MiB | read MiB | load (1 min) |\n|---|---:|---:|---:|---:|\n${rows.join('\n')}\n`);
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** Every message file's name without its W= field (an archive written before W= was). */
async function stripWireSizes(root: string): Promise<void> {
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !/^(cur|new)$/.test(path.basename(e.parentPath))) continue;
    const bare = e.name.replace(/,W=\d+/, '');
    if (bare !== e.name) await rename(path.join(e.parentPath, e.name), path.join(e.parentPath, bare));
  }
}

await main();
