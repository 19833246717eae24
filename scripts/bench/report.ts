/** The benchmark's results: their shape (bench/results.json), the console table and bench/README.md. */
import type { Machine } from './machine.js';
import type { ProfileSummary } from './profile.js';

export interface ScenarioResult {
  id: string;
  label: string;
  tool: string;
  account: string;
  /** messages and bytes (RFC822.SIZE sum) of the account: what a run must hold at the end */
  messages: number;
  bytes: number;
  /** messages the tool copied in this run (mailferry's summary; for mbsync the account's count or 0 on a rerun) */
  copied: number;
  wallS: number;
  messagesPerS: number;
  /** 10^6 bytes per second */
  mbPerS: number;
  cpuS: number | null;
  userS: number | null;
  sysS: number | null;
  peakRssMB: number | null;
  /** CPU seconds Dovecot (master + reaped imap/imap-login processes) spent during the run */
  serverCpuS: number | null;
  /** scenario the throughput ratio is taken against, and the ratio (>1: this one is faster) */
  baseline: string | null;
  ratio: number | null;
  /** the ratio the issue asks for at least (POP3 against the bare RETR loop, migrate against the backup) */
  ratioTarget?: number | null;
  load1Before: number;
  load1After: number;
  /** wall time of every round (the figures above are from the median round) */
  roundsWallS?: number[];
}

export interface MailboxInfo {
  user: string;
  seed: number;
  folders: number;
  messages: number;
  bytes: number;
  largestFolder: number;
  seedSeconds: number;
}

export interface RunResult {
  preset: string;
  machine: Machine;
  mailbox: MailboxInfo;
  /** other accounts (the memory comparison) */
  otherMailboxes: MailboxInfo[];
  scenarios: ScenarioResult[];
  startup: { command: string; runsMs: number[]; medianMs: number };
  memory: { account: string; messages: number; bytes: number; peakRssMB: number | null }[];
  profile: (ProfileSummary & { scenario: string; file: string }) | null;
  measuredWith: string;
  /** rounds of every scenario; each reports its median round */
  rounds: number;
  tls: string;
  notes: string[];
  loadAverageAtEnd: number[];
  totalSeconds: number;
}

export interface ResultsFile {
  version: 1;
  runs: Record<string, RunResult>;
}

// Results files written by older versions may lack a field: undefined prints as '-' too.
const f1 = (n: number | null | undefined): string => (n === null || n === undefined ? '-' : n.toFixed(1));
const f2 = (n: number | null | undefined): string => (n === null || n === undefined ? '-' : n.toFixed(2));

/** Short names of the scenarios ratios are taken against. */
function baselineName(id: string): string {
  if (id.startsWith('mbsync')) return 'mbsync';
  if (id === 'retr-loop') return 'RETR loop';
  if (id === 'mailferry-maildir') return 'IMAP backup';
  return id;
}

function ratioCell(s: ScenarioResult): string {
  if (s.ratio === null || s.baseline === null) return '';
  return `${s.ratio.toFixed(2)}x ${baselineName(s.baseline)}`;
}

/** One line per scenario with a target ratio: the ratio, the target, met or not. */
export function targetLines(r: RunResult): string[] {
  return r.scenarios.flatMap((s) => {
    const target = s.ratioTarget;
    if (target === null || target === undefined || s.baseline === null) return [];
    const base = r.scenarios.find((b) => b.id === s.baseline);
    const got = s.ratio === null ? 'not measured' : `${(s.ratio * 100).toFixed(0)}%${s.ratio >= target ? '' : ' (NOT met)'}`;
    return [`${s.label} at ${got} of ${base?.label ?? s.baseline}'s throughput (target: at least ${(target * 100).toFixed(0)}%)`];
  });
}

/** Each disk floor (an archive's files rewritten, fsync'd, without network) and the runs that wrote those files. */
const FLOORS: Record<string, string[]> = {
  'disk-floor': ['mailferry-maildir', 'mbsync-maildir'],
  'disk-floor-inbox': ['mailferry-pop3-maildir', 'retr-loop'],
};

/** How close the runs come to what the disk allows at all, and the best any client could do here. */
export function floorLines(r: RunResult): string[] {
  return Object.entries(FLOORS).flatMap(([id, runs]) => {
    const floor = r.scenarios.find((s) => s.id === id);
    if (floor === undefined) return [];
    const of = runs.flatMap((rid) => {
      const s = r.scenarios.find((x) => x.id === rid);
      return s === undefined ? [] : [`${s.label} ${f2(s.wallS)} s (${((floor.wallS / s.wallS) * 100).toFixed(0)}% of the floor's speed)`];
    });
    const line =
      `${floor.label}: ${floor.copied.toLocaleString('en')} files in ${f2(floor.wallS)} s, ${f2(floor.cpuS)} s CPU of which ${f2(floor.sysS)} s sys; ` + of.join(', ');
    const bound = bestCase(r, floor, runs);
    return bound === undefined ? [line] : [line, bound];
  });
}

/**
 * The shortest wall time any client could reach for the runs a floor stands for, on this machine:
 * it cannot write the files faster than the floor did (wall), and the kernel's work for those
 * files (the floor's CPU) plus the server's (the least Dovecot CPU among those runs) must fit on
 * the machine's cores, even if the client itself spent no CPU at all. Compared with the
 * baseline's wall time, it is the best ratio the target could be met with.
 */
export function bestCase(r: RunResult, floor: ScenarioResult, runs: readonly string[]): string | undefined {
  const measured = runs.map((id) => r.scenarios.find((s) => s.id === id)).filter((s): s is ScenarioResult => s !== undefined);
  const server = Math.min(...measured.map((s) => s.serverCpuS ?? Infinity));
  if (floor.cpuS === null || !Number.isFinite(server) || r.machine.cores < 1) return undefined;
  const cpuBound = (floor.cpuS + server) / r.machine.cores;
  const best = Math.max(floor.wallS, cpuBound);
  const compared = measured.flatMap((s) => {
    const base = s.baseline === null ? undefined : r.scenarios.find((b) => b.id === s.baseline);
    if (base === undefined || base.bytes !== s.bytes) return [];
    const target = s.ratioTarget;
    const at = base.wallS / best;
    return [`${s.label} against ${base.label} at best ${at.toFixed(2)}x${target === undefined || target === null ? '' : ` (target ${target}x: ${at >= target ? 'reachable in principle' : 'out of reach on this machine'})`}`];
  });
  return (
    `best case for any client here: ${f2(best)} s (the floor's wall ${f2(floor.wallS)} s; its CPU plus the server's ${f2(server)} s over ` +
    `${r.machine.cores} cores ${f2(cpuBound)} s)` + (compared.length > 0 ? `, so ${compared.join('; ')}` : '')
  );
}

function rows(r: RunResult): string[][] {
  return r.scenarios.map((s) => [
    s.label,
    String(s.copied),
    (s.bytes / 1e6).toFixed(0),
    f2(s.wallS),
    s.messagesPerS.toFixed(0),
    f1(s.mbPerS),
    f2(s.cpuS),
    f2(s.sysS),
    f1(s.peakRssMB),
    f2(s.serverCpuS),
    ratioCell(s),
  ]);
}

const HEADER = ['scenario', 'copied', 'MB', 'wall s', 'msg/s', 'MB/s', 'CPU s', 'of it sys', 'peak RSS MB', 'server CPU s', 'ratio vs'];

export function consoleTable(r: RunResult): string {
  const all = [HEADER, ...rows(r)];
  const widths = HEADER.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]): string =>
    row.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(HEADER), widths.map((w) => '-'.repeat(w)).join('  '), ...rows(r).map(line)].join('\n');
}

function markdownTable(r: RunResult): string {
  const out = [`| ${HEADER.join(' | ')} |`, `|${HEADER.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const row of rows(r)) out.push(`| ${row.join(' | ')} |`);
  return out.join('\n');
}

function section(r: RunResult): string {
  const m = r.machine;
  const mb = r.mailbox;
  const lines = [
    `## \`--size ${r.preset}\`: ${mb.messages.toLocaleString('en')} messages, ${(mb.bytes / 1e6).toFixed(0)} MB in ${mb.folders} folders`,
    '',
    `Measured ${m.date} on ${m.cpuModel}, ${m.cores} cores, ${m.ramGB} GB RAM, ${m.os} (Linux ${m.kernel}), ` +
      `Node ${m.node}, Dovecot ${m.dovecot ?? '?'}, ${m.mbsync ?? 'mbsync not available'}. ` +
      `Load average at start ${m.loadAverageAtStart.join(' / ')}, at end ${r.loadAverageAtEnd.join(' / ')} ` +
      `(the machine was shared with other test runs). Whole run: ${Math.round(r.totalSeconds)} s, ` +
      `seeding took ${mb.seedSeconds.toFixed(0)} s.`,
    '',
    markdownTable(r),
    '',
    ...(r.rounds > 1
      ? [`Each row is the median of ${r.rounds} rounds (wall s per round: ` +
          r.scenarios.map((s) => `${s.id} ${(s.roundsWallS ?? []).map((w) => w.toFixed(2)).join('/')}`).join('; ') + ').', '']
      : []),
    `- \`mailferry --help\` startup: median ${r.startup.medianMs.toFixed(0)} ms of ${r.startup.runsMs.length} ` +
      `(${r.startup.runsMs.map((x) => x.toFixed(0)).join(', ')}).`,
    ...targetLines(r).map((t) => `- ${t}.`),
    ...floorLines(r).map((t) => `- ${t}.`),
    `- Peak RSS against mailbox size (Maildir backup): ` +
      r.memory.map((p) => `${p.messages.toLocaleString('en')} messages / ${(p.bytes / 1e6).toFixed(0)} MB: ${f1(p.peakRssMB)} MB`).join('; ') +
      '.',
  ];
  if (r.profile !== null) {
    lines.push(
      `- CPU profile of \`${r.profile.scenario}\` (\`node --cpu-prof\`, ${r.profile.totalMs} ms sampled), self time by area: ` +
        r.profile.byArea.slice(0, 8).map((a) => `${a.area} ${a.percent}%`).join(', ') + '.',
    );
  }
  for (const n of r.notes) lines.push(`- ${n}`);
  return lines.join('\n');
}

export function readme(results: ResultsFile): string {
  const order = ['small', 'medium', 'full'];
  const runs = Object.values(results.runs).sort((a, b) => {
    const ia = order.indexOf(a.preset);
    const ib = order.indexOf(b.preset);
    return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib);
  });
  return [
    '# mailferry benchmark',
    '',
    'Generated by `npm run bench` (`scripts/bench.ts`) from `bench/results.json`; do not edit by hand.',
    '',
    'A throwaway Dovecot on 127.0.0.1 is seeded (MULTIAPPEND, several connections) with a reproducible',
    'mailbox: messages mostly 2-50 KB (plain text, text+HTML, small attachments), 2.5% with a',
    '100 KB-5 MB base64 attachment, one in 7,000 of 20-50 MB. Every backup writes into a fresh',
    'directory (a rerun reuses the archive of the run it repeats) over IMAPS (POP3S for POP3), and',
    'counts only after the archive was checked: messages per folder equal the server\'s (a migrate:',
    'on the target; the RETR loop: its count equals the INBOX\'s).',
    '',
    '- *copied*: messages the run copied; *MB*: the account\'s (for POP3: the INBOX\'s) RFC822.SIZE sum (10^6 bytes);',
    '  *msg/s* and *MB/s*: the account\'s messages and bytes over wall time (for a rerun: checked, not copied).',
    '- *CPU s* (user + sys; *of it sys*: in the kernel) and *peak RSS* of the tool\'s process, from',
    '  GNU `time -v`; *server CPU s*: Dovecot\'s processes (TLS included) during the run, from /proc.',
    '- *ratio vs*: the named run\'s wall time over this one\'s, on the same messages (>1: this one is',
    '  faster). Against *mbsync* for the backups; mailferry POP3->Maildir (the INBOX, over POP3S) against',
    '  a *RETR loop*: a bare client (scripts/bench/retr-loop.ts) that pipelines `RETR 1..N` (16 in flight)',
    '  and discards the bodies (no disk); `mailferry migrate` IMAP->IMAP, into a new empty user of the',
    '  same Dovecot each round and checked there per folder, against the mailferry IMAP->Maildir *IMAP backup*.',
    '  The issue asks for at least 60% in both of these.',
    '- mbsync 1.4 runs `Sync Pull`, `Create Near`, `Patterns *`, IMAPS with the test CA, `FSync yes`, one connection.',
    '  Durability is comparable: mbsync fsyncs each message file and fdatasyncs its journal per message',
    '  (strace of a 2,000-message run: 2,000 fsync + 2,012 fdatasync); mailferry fsyncs each message',
    '  file before it counts, and per batch the cur/ directory and its state file (2,038 fsync).',
    '- Over an emulated WAN link (`npm run bench -- --wan`: mailferry, mbsync and a bare fetch through',
    '  scripts/bench/wan-proxy.ts at 0, 25 and 50 ms one way): raw results in `bench/wan.json`, read in docs/performance.md.',
    '',
    ...runs.map(section).flatMap((s) => [s, '']),
  ].join('\n');
}
