/**
 * `node dist/scripts/bench/batch.js [ACCOUNTS] [MESSAGES] [DELAY_MS] [BYTES_PER_S]`: how
 * `mailferry batch --jobs N` grows
 * in wall time and peak RSS for N = 1, 2, 4, 8. A throwaway Dovecot on loopback gets ACCOUNTS
 * accounts (default 8) of MESSAGES messages each (default 300: 2-60 KB, log-uniform, plus two of
 * 3 MB), seeded the same every run; for each N a fresh batch of one backup row per account (into
 * Maildir) runs under GNU time (peak RSS of the process), and the archives are counted before the
 * time counts. With DELAY_MS, the rows reach Dovecot through the WAN proxy (wan-proxy.ts: that
 * one-way delay, and BYTES_PER_S per connection and direction when given), as a remote provider
 * would be reached. Prints a Markdown table (docs/performance.md has the latest).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startDovecot } from '../dev/dovecot.js';
import { seedMailbox, type SeedMessage } from '../dev/seed.js';
import { prng } from '../../test/fixtures/nasty.js';
import { measure } from './measure.js';
import { startWanProxy } from './wan-proxy.js';

const accounts = Number(process.argv[2] ?? 8);
const perAccount = Number(process.argv[3] ?? 300);
const delayMs = Number(process.argv[4] ?? 0);
const bytesPerS = process.argv[5] === undefined ? undefined : Number(process.argv[5]);
const BIN = resolve(import.meta.dirname, '..', '..', '..', 'bin', 'mailferry.js');

function messages(seed: number): SeedMessage[] {
  const rand = prng(seed);
  const out: SeedMessage[] = [];
  for (let i = 0; i < perAccount; i++) {
    const size = i < 2 ? 3 << 20 : Math.round(2048 * Math.exp((rand() / 2 ** 32) * Math.log(30)));
    const line = `${'x'.repeat(70)}\r\n`;
    const body = line.repeat(Math.ceil(size / line.length));
    out.push({ raw: Buffer.from(`From: a@example.org\r\nSubject: ${seed}/${i}\r\nMessage-ID: <${seed}.${i}@bench>\r\n\r\n${body}`) });
  }
  return out;
}

async function count(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile() && /(^|\/)(cur|new)$/.test(e.parentPath)) n++;
  return n;
}

/** The most rows that ran at the same moment, from the report's start times and durations. */
function overlap(rows: readonly { started: string; seconds: number }[]): number {
  const edges = rows.flatMap((r) => {
    const t = Date.parse(r.started);
    return [{ t, d: 1 }, { t: t + r.seconds * 1000, d: -1 }];
  });
  edges.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let most = 0;
  for (const e of edges) most = Math.max(most, (now += e.d));
  return most;
}

const users = Array.from({ length: accounts }, (_v, i) => ({ name: `bench${i}`, password: `bench-pw-${i}` }));
const server = await startDovecot({ users });
const root = await mkdtemp(join(tmpdir(), 'mf-batch-bench-'));
const wan = delayMs > 0 ? await startWanProxy({ targetPort: server.imapPort, delayMs, ...(bytesPerS === undefined ? {} : { bytesPerS }) }) : undefined;
const port = wan?.port ?? server.imapPort;
try {
  let bytes = 0;
  for (const [i, u] of users.entries()) {
    const m = messages(i + 1);
    bytes += m.reduce((n, x) => n + x.raw.length, 0);
    await seedMailbox(server, u, [{ path: 'INBOX', messages: m }]);
  }
  const link = wan === undefined ? '' : `, through a ${delayMs} ms one-way delay${bytesPerS === undefined ? '' : ` and ${bytesPerS} B/s per connection`}`;
  process.stdout.write(`${accounts} accounts x ${perAccount} messages, ${(bytes / 1e6).toFixed(1)} MB in all${link}\n\n`);
  process.stdout.write('| --jobs | wall s | MB/s | CPU s | peak RSS MB | rows at once (measured) |\n|---:|---:|---:|---:|---:|---:|\n');
  const env: Record<string, string> = { XDG_STATE_HOME: join(root, 'state') };
  for (const u of users) env[`PW_${u.name.toUpperCase()}`] = u.password;
  for (const jobs of [1, 2, 4, 8]) {
    const dir = join(root, `jobs${jobs}`);
    const file = join(root, `jobs${jobs}.csv`);
    const rows = users.map((u, i) => `backup,imap://${u.name}@127.0.0.1:${port},maildir:${join(dir, String(i))},PW_${u.name.toUpperCase()},starttls,${server.caFile}`);
    await writeFile(file, ['command,from,to,password-env,tls-mode,ca', ...rows].join('\n'));
    const r = await measure([process.execPath, BIN, 'batch', file, '--jobs', String(jobs), '--quiet'], { env });
    if (r.status !== 0) throw new Error(`--jobs ${jobs}: exit ${r.status}: ${r.stderr}`);
    for (let i = 0; i < accounts; i++) {
      const n = await count(join(dir, String(i)));
      if (n !== perAccount) throw new Error(`--jobs ${jobs}: account ${i} has ${n} of ${perAccount} messages`);
    }
    const report = (await readFile(join(root, `jobs${jobs}.report.jsonl`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { started: string; seconds: number });
    process.stdout.write(`| ${jobs} | ${r.wallS.toFixed(1)} | ${(bytes / 1e6 / r.wallS).toFixed(1)} | ${r.cpuS?.toFixed(1) ?? '?'} | ${r.peakRssMB?.toFixed(0) ?? '?'} | ${overlap(report)} |\n`);
    await rm(dir, { recursive: true, force: true });
  }
  // The same rows as separate processes, 4 at a time (what GNU parallel or xargs -P would run):
  // GNU time's peak RSS is then the largest one process, so 4 at once hold about 4 times it.
  const dir = join(root, 'xargs');
  const files = await Promise.all(
    users.map(async (u, i) => {
      const f = join(root, `one-${i}.csv`);
      await writeFile(f, `command,from,to,password-env,tls-mode,ca\nbackup,imap://${u.name}@127.0.0.1:${port},maildir:${join(dir, String(i))},PW_${u.name.toUpperCase()},starttls,${server.caFile}\n`);
      return f;
    }),
  );
  const x = await measure(['sh', '-c', `printf '%s\\n' ${files.join(' ')} | xargs -P4 -I{} ${process.execPath} ${BIN} batch {} --quiet`], { env });
  if (x.status !== 0) throw new Error(`xargs: exit ${x.status}: ${x.stderr}`);
  process.stdout.write(`| xargs -P4, a process per row | ${x.wallS.toFixed(1)} | ${(bytes / 1e6 / x.wallS).toFixed(1)} | ${x.cpuS?.toFixed(1) ?? '?'} | ${x.peakRssMB?.toFixed(0) ?? '?'} (each) | 4 |\n`);
} finally {
  await wan?.close();
  await server.stop();
  await rm(root, { recursive: true, force: true });
}
