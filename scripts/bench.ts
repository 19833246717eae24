/**
 * `npm run bench [-- --size small|full] [--messages N] [--seed N] [--repeat N] [--profile] [--keep] [--workdir DIR]`
 *
 * Issue 7's benchmark. Starts a throwaway Dovecot, seeds a reproducible mailbox into user `src`
 * (see scripts/bench/mailbox.ts), then times, on that same mailbox and each into a fresh directory:
 * mailferry IMAP->Maildir, IMAP->mbox, a Maildir rerun with nothing new, `--connections 1`, and
 * mbsync IMAP->Maildir (+ its rerun) as the reference; POP3->Maildir of the INBOX against a bare
 * pipelined RETR loop (scripts/bench/retr-loop.ts); a disk floor (the Maildir backup's files
 * rewritten with an fsync each, no network: scripts/bench/disk-floor.ts); and `mailferry migrate` IMAP->IMAP into a new,
 * empty user of the same server (one per round) against the IMAP->Maildir backup. Every run is
 * verified (messages per folder in the archive, or on the migrate target, = the server's; the
 * RETR loop's count = the INBOX's) before its time counts. Also: `mailferry --help` startup (median of
 * 5), peak RSS at two mailbox sizes, and with `--profile` a CPU profile of one Maildir run.
 * Prints a table and writes bench/results.json (one entry per preset) and bench/README.md.
 *
 * More scenarios are added as entries of `scenarios` with a runner for their tool.
 *
 * `npm run bench -- --wan [--messages N] [--folders N] [--delays 0,25,50] [--rate BYTES/S] [--repeat N]`
 * runs issue 21's WAN comparison instead (scripts/bench/wan.ts): mailferry, mbsync and a bare
 * fetch through an emulated link with a one-way delay (scripts/bench/wan-proxy.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findDovecot, startDovecot, type DovecotServer } from './dev/dovecot.js';
import { seedMailbox } from './dev/seed.js';
import { describeMachine, processTreeCpuS } from './bench/machine.js';
import { generateFolder, planMailbox, type MailboxSpec } from './bench/mailbox.js';
import { aptInstall, ensureGnuTime, measure, type Measured } from './bench/measure.js';
import { mbsyncVersion, writeMbsyncConfig } from './bench/mbsync.js';
import { runWan, TOOLS as WAN_TOOLS, type Tool as WanTool } from './bench/wan.js';
import { summarizeProfile } from './bench/profile.js';
import { consoleTable, floorLines, readme, targetLines, type MailboxInfo, type ResultsFile, type RunResult, type ScenarioResult } from './bench/report.js';
import { serverTruth, verifyArchive, verifyServer, type AccountTruth, type ArchiveFormat } from './bench/verify.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'mailferry.js');
const RETR_LOOP = path.join(ROOT, 'dist', 'scripts', 'bench', 'retr-loop.js');
const DISK_FLOOR = path.join(ROOT, 'dist', 'scripts', 'bench', 'disk-floor.js');
const RESULTS = path.join(ROOT, 'bench', 'results.json');
const README = path.join(ROOT, 'bench', 'README.md');
const PASSWORD_ENV = 'MAILFERRY_BENCH_PASSWORD';
const TARGET_PASSWORD_ENV = 'MAILFERRY_BENCH_TARGET_PASSWORD';

const PRESETS: Record<string, number> = { small: 2_000, full: 20_000 };
/** The second mailbox of the peak-RSS comparison (issue 7: 5k vs 20k). */
const MEMORY_OTHER = 5_000;

const log = (s: string): void => {
  process.stderr.write(`bench: ${s}\n`);
};

// ---------------------------------------------------------------------------------------------
// Command line

interface WanFlags {
  wan: true;
  messages: number;
  folders: number;
  delays: number[];
  repeat: number;
  seed: number;
  bytesPerS: number | undefined;
  tools?: WanTool[];
  baseline?: string;
}

interface Options {
  wan: false;
  preset: string;
  messages: number;
  seed: number;
  profile: boolean;
  keep: boolean;
  repeat: number;
  workdir: string | undefined;
}

function options(): Options | WanFlags {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: 'small' },
      messages: { type: 'string' },
      seed: { type: 'string', default: '1' },
      profile: { type: 'boolean', default: false },
      repeat: { type: 'string' },
      keep: { type: 'boolean', default: false },
      workdir: { type: 'string' },
      wan: { type: 'boolean', default: false },
      folders: { type: 'string', default: '16' },
      delays: { type: 'string', default: '0,25,50' },
      rate: { type: 'string' },
      tools: { type: 'string' },
      baseline: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run bench -- [--size small|full] [--messages N] [--seed N] [--repeat N] [--profile] [--keep] [--workdir DIR]\n' +
        '  --size small   ~2,000 messages / ~125 MB in 4 folders (default)\n' +
        '  --size full    ~20,000 messages / ~1 GB in 20 folders\n' +
        '  --messages N   a custom count (results stored under "messages-N")\n' +
        '  --repeat N     rounds of every scenario; each reports its median (default: 3 for small, else 1)\n' +
        '  --profile      also run one Maildir backup under node --cpu-prof and summarize it\n' +
        '  --keep         keep the work directory (archives, profiles, mbsync config)\n' +
        '  --wan          the WAN mode instead (scripts/bench/wan.ts): mailferry, mbsync and a bare fetch through an\n' +
        '                 emulated link; --messages (default 2000), --folders N (16), --delays MS,MS (0,25,50 one way),\n' +
        '                 --rate BYTES/S (per connection and direction; default none), --repeat N (default 2); writes bench/wan.json;\n' +
        '                 --tools a,b (a subset of the runs), --baseline DIR (another built checkout, run as baseline and\n' +
        '                 baseline-c1 in the same rounds: before/after)\n',
    );
    process.exit(0);
  }
  if (values.wan) {
    const list = (v: string): number[] => v.split(',').map(Number);
    const wan = {
      messages: Number(values.messages ?? 2_000),
      folders: Number(values.folders),
      delays: list(values.delays),
      repeat: Number(values.repeat ?? 2),
      seed: Number(values.seed),
      bytesPerS: values.rate === undefined ? undefined : Number(values.rate),
      ...(values.tools === undefined ? {} : { tools: values.tools.split(',') as WanTool[] }),
      ...(values.baseline === undefined ? {} : { baseline: path.resolve(values.baseline) }),
    };
    const unknown = (wan.tools ?? []).filter((t) => !WAN_TOOLS.includes(t));
    if (unknown.length > 0) throw new Error(`--tools: unknown ${unknown.join(', ')} (known: ${WAN_TOOLS.join(', ')})`);
    const whole = [wan.messages, wan.folders, wan.repeat, wan.seed, ...wan.delays, wan.bytesPerS ?? 1];
    if (!whole.every((n) => Number.isInteger(n) && n >= 0) || wan.messages < 10 || wan.folders < 1 || wan.repeat < 1) {
      throw new Error('--wan: --messages >= 10, --folders >= 1, --repeat >= 1, --delays and --rate whole numbers');
    }
    return { ...wan, wan: true };
  }
  const count = values.messages !== undefined ? Number(values.messages) : PRESETS[values.size];
  if (count === undefined || !Number.isInteger(count) || count < 10) {
    throw new Error(`--size must be ${Object.keys(PRESETS).join(' or ')}, --messages a whole number >= 10`);
  }
  const preset = values.messages !== undefined ? `messages-${count}` : values.size;
  // The machine is shared: three rounds of the quick preset, one of the long ones.
  const repeat = Number(values.repeat ?? (preset === 'small' ? 3 : 1));
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error('--repeat must be a whole number >= 1');
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new Error('--seed must be a whole number');
  return {
    wan: false,
    preset,
    messages: count,
    seed,
    profile: values.profile,
    keep: values.keep,
    repeat,
    workdir: values.workdir,
  };
}

// ---------------------------------------------------------------------------------------------
// Accounts

interface Account {
  user: string;
  password: string;
  spec: MailboxSpec;
  truth: AccountTruth;
  info: MailboxInfo;
}

async function seedAccount(server: DovecotServer, user: string, spec: MailboxSpec): Promise<Account> {
  const password = `bench-${user}-password`;
  await server.addUser({ name: user, password });
  const started = performance.now();
  const plans = planMailbox(spec);
  // Four folders at a time (one connection each), so the whole mailbox is never in memory.
  for (let i = 0; i < plans.length; i += 4) {
    const folders = plans.slice(i, i + 4).map(generateFolder);
    await seedMailbox(server, { name: user, password }, folders, { connections: 4 });
  }
  const seedSeconds = (performance.now() - started) / 1000;
  const truth = await serverTruth({ host: server.host, imapPort: server.imapPort, user, password });
  if (truth.messages !== spec.messages) throw new Error(`seeding ${user}: server holds ${truth.messages} messages, expected ${spec.messages}`);
  log(`seeded ${user}: ${truth.messages} messages, ${(truth.bytes / 1e6).toFixed(0)} MB in ${truth.folders.length} folders, ${seedSeconds.toFixed(1)} s`);
  return {
    user,
    password,
    spec,
    truth,
    info: {
      user,
      seed: spec.seed,
      folders: truth.folders.length,
      messages: truth.messages,
      bytes: truth.bytes,
      largestFolder: Math.max(...truth.folders.map((f) => f.messages)),
      seedSeconds: Number(seedSeconds.toFixed(1)),
    },
  };
}

/** The account as POP3 sees it: its INBOX only. */
function inboxOnly(a: Account): Account {
  const inbox = a.truth.folders.filter((f) => f.path === 'INBOX');
  const truth = { folders: inbox, messages: inbox.reduce((n, f) => n + f.messages, 0), bytes: inbox.reduce((n, f) => n + f.bytes, 0) };
  if (truth.messages === 0) throw new Error(`${a.user} has no messages in INBOX: nothing for POP3 to fetch`);
  return { ...a, truth };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

type Tool = 'mailferry' | 'mbsync' | 'mailferry-migrate' | 'retr-loop' | 'disk-floor';

interface Scenario {
  id: string;
  label: string;
  tool: Tool;
  account: Account;
  /** null: no archive (the migrate and RETR loop runners check their own result) */
  format: ArchiveFormat | null;
  /** Back up over POP3 (pop3s) instead of IMAPS (mailferry only). */
  pop3?: boolean;
  /** Output directory (under the work directory). A rerun names the directory of the run it repeats. */
  dir: string;
  /** The directory already holds a complete backup: the run must copy nothing. */
  rerun?: boolean;
  /** Extra mailferry flags. */
  args?: string[];
  /** Scenario id the throughput ratio is taken against, and the ratio the issue asks for at least. */
  baseline?: string;
  ratioTarget?: number;
  /** A finished Maildir backup (its directory) whose files the disk floor copies. */
  like?: string;
  /** Run under `node --cpu-prof` into this directory (mailferry only); not timed for the table. */
  cpuProfDir?: string;
}

interface Context {
  server: DovecotServer;
  work: string;
  /** migrate targets created so far (each run copies into a new, empty user) */
  targets: number;
}

function mailferryArgs(s: Scenario, ctx: Context): string[] {
  if (s.format === null) throw new Error(`${s.label}: a backup needs an archive format`);
  return [
    // As users start it (npm's bin link, cron): the bin itself, whose #! line sets the memory
    // flags; under --cpu-prof through node, without them.
    ...(s.cpuProfDir === undefined ? [BIN] : [process.execPath, '--cpu-prof', '--cpu-prof-dir', s.cpuProfDir, BIN]),
    'backup',
    '--from', s.pop3 === true ? `pop3s://${s.account.user}@${ctx.server.host}:${ctx.server.pop3sPort}` : imapsUrl(s.account.user, ctx),
    '--ca', ctx.server.caFile,
    '--password-env', PASSWORD_ENV,
    '--to', `${s.format}:${path.join(ctx.work, s.dir)}`,
    '--json',
    ...(s.args ?? []),
  ];
}

const imapsUrl = (user: string, ctx: Context): string => `imaps://${user}@${ctx.server.host}:${ctx.server.imapsPort}`;

interface Ran {
  measured: Measured;
  copied: number;
}

/** `messages` of the last JSON line a run printed (mailferry's --json summary, the RETR loop's counts), once it exited 0. */
function messagesOf(s: Scenario, tool: string, measured: Measured): Ran {
  if (measured.status !== 0) throw new Error(`${s.label}: ${tool} exited with ${measured.status}\n${measured.stderr}`);
  const last = measured.stdout.trim().split('\n').pop() ?? '';
  const { messages } = JSON.parse(last) as { messages?: unknown };
  if (typeof messages !== 'number') throw new Error(`${s.label}: no message count on stdout: ${measured.stdout}`);
  return { measured, copied: messages };
}

/** How each tool is run; a new kind of scenario adds its runner here. */
const runners: Record<Tool, (s: Scenario, ctx: Context) => Promise<Ran>> = {
  async mailferry(s, ctx) {
    const measured = await measure(mailferryArgs(s, ctx), { env: { [PASSWORD_ENV]: s.account.password } });
    return messagesOf(s, 'mailferry', measured);
  },
  async 'retr-loop'(s, ctx) {
    const measured = await measure([
      process.execPath, RETR_LOOP,
      '--host', ctx.server.host,
      '--port', String(ctx.server.pop3sPort),
      '--ca', ctx.server.caFile,
      '--user', s.account.user,
      '--password-env', PASSWORD_ENV,
    ], { env: { [PASSWORD_ENV]: s.account.password } });
    return messagesOf(s, 'the RETR loop', measured);
  },
  async 'disk-floor'(s, ctx) {
    if (s.like === undefined) throw new Error(`${s.label}: the disk floor needs a finished backup to copy`);
    const measured = await measure([process.execPath, DISK_FLOOR, '--from', path.join(ctx.work, s.like), '--to', path.join(ctx.work, s.dir)]);
    return messagesOf(s, 'the disk floor', measured);
  },
  async 'mailferry-migrate'(s, ctx) {
    const user = `dst${++ctx.targets}`;
    const target = { host: ctx.server.host, imapPort: ctx.server.imapPort, user, password: `bench-${user}-password` };
    await ctx.server.addUser({ name: target.user, password: target.password });
    const measured = await measure([
      BIN, 'migrate',
      '--from', imapsUrl(s.account.user, ctx),
      '--password-env', PASSWORD_ENV,
      '--ca', ctx.server.caFile,
      '--to', imapsUrl(target.user, ctx),
      '--target-password-env', TARGET_PASSWORD_ENV,
      '--target-ca', ctx.server.caFile,
      '--json',
    ], {
      // The target's state file lives on this machine: in the work directory, not in ~.
      env: { [PASSWORD_ENV]: s.account.password, [TARGET_PASSWORD_ENV]: target.password, XDG_STATE_HOME: path.join(ctx.work, s.dir, 'state') },
    });
    const ran = messagesOf(s, 'mailferry migrate', measured);
    await verifyServer(s.label, target, s.account.truth);
    // The copy is checked: free its disk (the user is never used again).
    await rm(path.join(ctx.server.homeOf(target.user), 'Maildir'), { recursive: true, force: true });
    return ran;
  },
  async mbsync(s, ctx) {
    const conf = path.join(ctx.work, `${s.dir}.conf`);
    await mkdir(conf, { recursive: true, mode: 0o700 });
    const passwordFile = path.join(conf, 'password');
    await writeFile(passwordFile, s.account.password, { mode: 0o600 });
    const file = await writeMbsyncConfig(conf, {
      host: ctx.server.host,
      imapsPort: ctx.server.imapsPort,
      caFile: ctx.server.caFile,
      user: s.account.user,
      passwordFile,
    }, path.join(ctx.work, s.dir));
    const measured = await measure(['mbsync', '-c', file, '-a']);
    if (measured.status !== 0) throw new Error(`${s.label}: mbsync exited with ${measured.status}\n${measured.stdout}\n${measured.stderr}`);
    return { measured, copied: s.rerun === true ? 0 : s.account.truth.messages };
  },
};

function dovecotMasterPid(server: DovecotServer): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(server.dir, 'run', 'master.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function runScenario(s: Scenario, ctx: Context): Promise<ScenarioResult> {
  const out = path.join(ctx.work, s.dir);
  if (s.rerun !== true) await rm(out, { recursive: true, force: true });
  const master = dovecotMasterPid(ctx.server);
  const serverBefore = master === undefined ? null : processTreeCpuS(master);
  const load1Before = os.loadavg()[0] ?? 0;
  log(`running ${s.label} ...`);
  const { measured, copied } = await runners[s.tool](s, ctx);
  const load1After = os.loadavg()[0] ?? 0;
  await sleep(300); // let Dovecot reap the session's imap and imap-login processes
  const serverAfter = master === undefined ? null : processTreeCpuS(master);
  const truth = s.account.truth;
  if (s.format !== null) await verifyArchive(s.label, s.format, out, truth);
  const expected = s.rerun === true ? 0 : truth.messages;
  if (copied !== expected) throw new Error(`VERIFY FAILED for ${s.label}: copied ${copied} messages, expected ${expected}`);
  const r: ScenarioResult = {
    id: s.id,
    label: s.label,
    tool: s.tool,
    account: s.account.user,
    messages: truth.messages,
    bytes: truth.bytes,
    copied,
    wallS: round(measured.wallS, 3),
    messagesPerS: round(truth.messages / measured.wallS, 1),
    mbPerS: round(truth.bytes / 1e6 / measured.wallS, 2),
    cpuS: measured.cpuS === null ? null : round(measured.cpuS, 2),
    userS: measured.userS,
    sysS: measured.sysS,
    peakRssMB: measured.peakRssMB === null ? null : round(measured.peakRssMB, 1),
    serverCpuS: serverBefore === null || serverAfter === null ? null : round(serverAfter - serverBefore, 2),
    baseline: s.baseline ?? null,
    ratio: null,
    ratioTarget: s.ratioTarget ?? null,
    load1Before: round(load1Before, 2),
    load1After: round(load1After, 2),
  };
  log(`  ${r.wallS.toFixed(2)} s, ${r.messagesPerS.toFixed(0)} msg/s, ${r.mbPerS.toFixed(1)} MB/s, CPU ${r.cpuS ?? '-'} s, RSS ${r.peakRssMB ?? '-'} MB, server CPU ${r.serverCpuS ?? '-'} s (verified)`);
  return r;
}

/** The round with the median wall time (the lower middle of an even count), with every round's wall time. */
function medianRound(runs: ScenarioResult[]): ScenarioResult {
  const sorted = [...runs].sort((a, b) => a.wallS - b.wallS);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)];
  if (mid === undefined) throw new Error('no rounds');
  return { ...mid, roundsWallS: runs.map((r) => r.wallS) };
}

function round(n: number, digits: number): number {
  return Number(n.toFixed(digits));
}

async function startupTimes(): Promise<number[]> {
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const m = await measure([BIN, '--help'], { gnuTime: false });
    if (m.status !== 0) throw new Error(`mailferry --help exited with ${m.status}: ${m.stderr}`);
    runs.push(round(m.wallS * 1000, 1));
  }
  return runs;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

// ---------------------------------------------------------------------------------------------
// Main

function ensureDovecot(): string {
  const found = findDovecot();
  if (found !== undefined) return found;
  if (!aptInstall(['dovecot-imapd', 'dovecot-pop3d'], log) || findDovecot() === undefined) {
    throw new Error('Dovecot is needed: apt-get install dovecot-imapd dovecot-pop3d');
  }
  return findDovecot() as string;
}

function ensureMbsync(notes: string[]): string | undefined {
  let version = mbsyncVersion();
  if (version === undefined && aptInstall(['isync'], log)) version = mbsyncVersion();
  if (version === undefined) notes.push('mbsync (Debian package isync) is not installed and could not be: its scenarios were skipped.');
  return version;
}

async function main(): Promise<void> {
  const opts = options();
  if (opts.wan) return runWan({ ...opts, root: ROOT, log });
  const started = performance.now();
  const notes: string[] = [];
  const dovecot = ensureDovecot();
  const gnuTime = ensureGnuTime(log);
  if (!gnuTime) notes.push('GNU time is missing: CPU and peak RSS were not measured.');
  const mbsync = ensureMbsync(notes);
  const machine = describeMachine(dovecot, mbsync);
  log(`${machine.cpuModel}, ${machine.cores} cores, load ${machine.loadAverageAtStart.join(' ')}`);

  const work = opts.workdir !== undefined ? path.resolve(opts.workdir) : await mkdtemp(path.join(os.tmpdir(), 'mailferry-bench-'));
  await mkdir(work, { recursive: true });
  const server = await startDovecot({ users: [] });
  try {
    const ctx: Context = { server, work, targets: 0 };
    const primary = await seedAccount(server, 'src', { messages: opts.messages, seed: opts.seed });
    // Peak RSS at two sizes: the main mailbox and one of 5,000 messages (12,500 when the main
    // one has 5,000), so that memory can be seen not to follow the message count.
    const otherCount = opts.messages === MEMORY_OTHER ? Math.round(2.5 * MEMORY_OTHER) : MEMORY_OTHER;
    const other = await seedAccount(server, 'src2', { messages: otherCount, seed: opts.seed + 1 });
    const inbox = inboxOnly(primary);

    const scenarios: Scenario[] = [
      { id: 'mailferry-maildir', label: 'mailferry IMAP->Maildir', tool: 'mailferry', account: primary, format: 'maildir', dir: 'mf-maildir', baseline: 'mbsync-maildir', ratioTarget: 2 },
      ...(mbsync === undefined ? [] : [
        { id: 'mbsync-maildir', label: 'mbsync IMAP->Maildir', tool: 'mbsync', account: primary, format: 'maildir', dir: 'mbsync-maildir' } satisfies Scenario,
      ]),
      { id: 'mailferry-mbox', label: 'mailferry IMAP->mbox', tool: 'mailferry', account: primary, format: 'mbox', dir: 'mf-mbox', baseline: 'mbsync-maildir' },
      { id: 'mailferry-maildir-rerun', label: 'mailferry Maildir rerun (nothing new)', tool: 'mailferry', account: primary, format: 'maildir', dir: 'mf-maildir', rerun: true, baseline: 'mbsync-rerun' },
      ...(mbsync === undefined ? [] : [
        { id: 'mbsync-rerun', label: 'mbsync rerun (nothing new)', tool: 'mbsync', account: primary, format: 'maildir', dir: 'mbsync-maildir', rerun: true } satisfies Scenario,
      ]),
      // What this machine's disk allows at all: the same files written with the same durability, no network.
      { id: 'disk-floor', label: 'disk floor: the Maildir rewritten, fsync per file', tool: 'disk-floor', account: primary, format: 'maildir', dir: 'disk-floor', like: 'mf-maildir' },
      { id: 'mailferry-maildir-c1', label: 'mailferry IMAP->Maildir --connections 1', tool: 'mailferry', account: primary, format: 'maildir', dir: 'mf-maildir-c1', args: ['--connections', '1'], baseline: 'mbsync-maildir' },
      // The issue's targets: POP3->Maildir at least 60% of a bare RETR loop, migrate at least 60% of the backup.
      { id: 'retr-loop', label: 'bare pipelined RETR loop (POP3 INBOX)', tool: 'retr-loop', account: inbox, format: null, dir: 'retr-loop' },
      { id: 'mailferry-pop3-maildir', label: 'mailferry POP3->Maildir (INBOX)', tool: 'mailferry', account: inbox, format: 'maildir', pop3: true, dir: 'mf-pop3-maildir', baseline: 'retr-loop', ratioTarget: 0.6 },
      { id: 'disk-floor-inbox', label: 'disk floor: the POP3 archive rewritten, fsync per file', tool: 'disk-floor', account: inbox, format: 'maildir', dir: 'disk-floor-inbox', like: 'mf-pop3-maildir' },
      { id: 'mailferry-migrate', label: 'mailferry migrate IMAP->IMAP', tool: 'mailferry-migrate', account: primary, format: null, dir: 'mf-migrate', baseline: 'mailferry-maildir', ratioTarget: 0.6 },
      { id: 'mailferry-maildir-other', label: `mailferry IMAP->Maildir, ${other.truth.messages} messages`, tool: 'mailferry', account: other, format: 'maildir', dir: 'mf-maildir-other' },
    ];

    const startupRuns = await startupTimes();
    log(`mailferry --help: median ${median(startupRuns).toFixed(0)} ms (${startupRuns.join(', ')})`);

    // Rounds of every scenario in turn, so that a change in the machine's load (it is shared)
    // hits all tools alike; each scenario reports its median round.
    const rounds = new Map<string, ScenarioResult[]>();
    for (let round = 1; round <= opts.repeat; round++) {
      if (opts.repeat > 1) log(`round ${round} of ${opts.repeat}`);
      for (const [i, s] of scenarios.entries()) {
        rounds.set(s.id, [...(rounds.get(s.id) ?? []), await runScenario(s, ctx)]);
        // Free the disk as soon as no later scenario of the round reuses the directory.
        if (!opts.keep && !scenarios.slice(i + 1).some((t) => t.dir === s.dir || t.like === s.dir)) await rm(path.join(work, s.dir), { recursive: true, force: true });
      }
    }
    const results = scenarios.map((s) => medianRound(rounds.get(s.id) ?? []));
    for (const r of results) {
      const base = results.find((b) => b.id === r.baseline);
      if (base !== undefined) r.ratio = round(base.wallS / r.wallS, 2);
    }

    let profile: RunResult['profile'] = null;
    if (opts.profile) {
      const dir = path.join(work, 'cpu-profile');
      await rm(dir, { recursive: true, force: true });
      const s: Scenario = { id: 'profile', label: 'mailferry IMAP->Maildir under --cpu-prof', tool: 'mailferry', account: primary, format: 'maildir', dir: 'mf-maildir-prof', cpuProfDir: dir };
      const r = await runScenario(s, ctx);
      const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'));
      if (file === undefined) throw new Error('node --cpu-prof wrote no profile');
      // Kept outside the work directory (which is removed), for chrome://inspect or speedscope.
      const saved = path.join(os.tmpdir(), `mailferry-bench-${opts.preset}-maildir.cpuprofile`);
      await writeFile(saved, await readFile(path.join(dir, file)));
      profile = { scenario: `${s.label} (${r.wallS.toFixed(1)} s)`, file: saved, ...(await summarizeProfile(saved)) };
    }

    const memory = [
      { account: primary, run: 'mailferry-maildir' },
      { account: other, run: 'mailferry-maildir-other' },
    ]
      .map(({ account, run }) => ({
        account: account.user,
        messages: account.truth.messages,
        bytes: account.truth.bytes,
        peakRssMB: results.find((r) => r.id === run)?.peakRssMB ?? null,
      }))
      .sort((a, b) => a.messages - b.messages);

    const run: RunResult = {
      preset: opts.preset,
      machine,
      mailbox: primary.info,
      otherMailboxes: [other.info],
      scenarios: results,
      startup: { command: 'bin/mailferry.js --help', runsMs: startupRuns, medianMs: median(startupRuns) },
      memory,
      profile,
      rounds: opts.repeat,
      measuredWith: gnuTime
        ? 'wall: the harness clock around the child; CPU (user+sys) and peak RSS: GNU time -v (/usr/bin/time) of the child'
        : 'wall: the harness clock around the child; CPU and RSS not measured (no GNU time)',
      tls: 'IMAPS and POP3S (TLS on connect) for every tool, certificate verified against the harness CA (mailferry --ca/--target-ca, mbsync CertificateFile, the RETR loop\'s ca)',
      notes,
      loadAverageAtEnd: os.loadavg().map((l) => round(l, 2)),
      totalSeconds: round((performance.now() - started) / 1000, 1),
    };

    process.stdout.write(`\n${consoleTable(run)}\n\n`);
    for (const t of [...targetLines(run), ...floorLines(run)]) process.stdout.write(`${t}\n`);
    process.stdout.write(`mailferry --help: median ${run.startup.medianMs.toFixed(0)} ms\n`);
    process.stdout.write(`peak RSS: ${memory.map((m) => `${m.messages} messages -> ${m.peakRssMB ?? '-'} MB`).join(', ')}\n`);
    if (profile !== null) {
      process.stdout.write(`\nCPU profile (${profile.file}), self time by area:\n`);
      for (const a of profile.byArea) process.stdout.write(`  ${a.area.padEnd(28)} ${String(a.selfMs).padStart(7)} ms  ${a.percent}%\n`);
      process.stdout.write('top functions by self time:\n');
      for (const e of profile.top) process.stdout.write(`  ${String(e.selfMs).padStart(7)} ms ${String(e.percent).padStart(5)}%  ${e.name}  ${e.where}\n`);
    }

    await mkdir(path.dirname(RESULTS), { recursive: true });
    const all: ResultsFile = existsSync(RESULTS)
      ? (JSON.parse(await readFile(RESULTS, 'utf8')) as ResultsFile)
      : { version: 1, runs: {} };
    all.runs[opts.preset] = run;
    await writeFile(RESULTS, `${JSON.stringify(all, null, 2)}\n`);
    await writeFile(README, readme(all));
    log(`wrote ${path.relative(ROOT, RESULTS)} and ${path.relative(ROOT, README)} (${run.totalSeconds.toFixed(0)} s in all)`);
  } catch (e: unknown) {
    log(`dovecot log tail:\n${server.logTail(20)}`);
    throw e;
  } finally {
    await server.stop();
    if (!opts.keep && opts.workdir === undefined) await rm(work, { recursive: true, force: true });
    else log(`work directory kept: ${work}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
