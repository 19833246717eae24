/**
 * `npm run bench -- --wan [--messages N] [--folders N] [--delays 0,25,50] [--repeat N] [--rate BYTES/S]`
 *
 * Issue 21's WAN mode. One generated mailbox (default 2,000 messages, ~150 MB, 16 folders) in a
 * throwaway Dovecot; for every one-way delay, a fresh emulated link (wan-proxy.ts) in front of
 * Dovecot's plain IMAP port per run, and through it, each into a fresh Maildir: mailferry as
 * installed (the bin and its #! line) with its default connections and with `--connections 1`,
 * mbsync (one connection), and the bare-fetch floor (fetch-floor.ts: SELECT + one
 * `UID FETCH 1:* (BODY.PEEK[])` per folder on one connection, no disk). Plain IMAP, not IMAPS,
 * so that the proxy can count each client's commands and turns (round trips waited on); TLS
 * costs the same with or without the link. Every archive is checked folder by folder before its
 * time counts. Rounds alternate the tools; each reports its median round and the spread. Writes
 * bench/wan.json (one entry per mailbox size, delays and rate).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDovecot, findDovecot } from '../dev/dovecot.js';
import { seedMailbox } from '../dev/seed.js';
import { describeMachine } from './machine.js';
import { generateFolder, planMailbox, type MailboxSpec } from './mailbox.js';
import { ensureGnuTime, measure, type Measured } from './measure.js';
import { mbsyncVersion, writeMbsyncConfig } from './mbsync.js';
import { serverTruth, verifyArchive, type AccountTruth } from './verify.js';
import { startWanProxy, type ConnectionStats } from './wan-proxy.js';

export interface WanOptions {
  root: string;
  messages: number;
  folders: number;
  seed: number;
  delays: number[];
  repeat: number;
  bytesPerS: number | undefined;
  /** which runs (default: all but the baseline ones) */
  tools?: Tool[];
  /** another mailferry checkout, built (its bin/mailferry.js), run as `baseline` in the same rounds */
  baseline?: string;
  log: (s: string) => void;
}

export type Tool = 'mailferry' | 'mailferry-c1' | 'mbsync' | 'fetch-floor' | 'baseline' | 'baseline-c1' | 'no-flags';
export const TOOLS: Tool[] = ['fetch-floor', 'mbsync', 'baseline', 'mailferry', 'baseline-c1', 'mailferry-c1', 'no-flags'];
/** Run unless --tools says otherwise. */
const DEFAULT_TOOLS: Tool[] = ['fetch-floor', 'mbsync', 'baseline', 'mailferry', 'baseline-c1', 'mailferry-c1'];
const LABELS: Record<Tool, string> = {
  'fetch-floor': 'bare UID FETCH 1:* per folder',
  mbsync: 'mbsync',
  mailferry: 'mailferry (4 connections)',
  'mailferry-c1': 'mailferry --connections 1',
  baseline: 'baseline (4 connections)',
  'baseline-c1': 'baseline --connections 1',
  'no-flags': 'node bin/mailferry.js (no #! flags)',
};
const PASSWORD_ENV = 'MAILFERRY_BENCH_PASSWORD';

export interface WanRun {
  tool: Tool;
  delayMs: number;
  wallS: number;
  roundsWallS: number[];
  messagesPerS: number;
  mbPerS: number;
  cpuS: number | null;
  peakRssMB: number | null;
  /** mbsync's wall time over this one's, same delay (>1: faster than mbsync) */
  vsMbsync: number | null;
  /** this one's wall time over the floor's, same delay */
  vsFloor: number | null;
  connections: number;
  /** client turns (round trips waited on), all connections */
  turns: number;
  /** the busiest connection's turns: the serial chain of waits */
  maxTurns: number;
  commands: Record<string, number>;
  /** per connection, its turns in order, repeats folded: `SELECT | UID FETCH body x12 | ...` */
  turnLogs: string[];
}

/** Runs of equal items folded: `X x5`. */
function fold(items: string[], sep: string): string {
  const out: string[] = [];
  for (let i = 0; i < items.length; ) {
    let j = i;
    while (j < items.length && items[j] === items[i]) j++;
    out.push(j - i > 1 ? `${items[i] ?? ''} x${j - i}` : (items[i] ?? ''));
    i = j;
  }
  return out.join(sep);
}

/** A connection's turn log, repeated commands within a turn and repeated turns folded: `SELECT | UID FETCH body x40 | ...`. */
export function foldTurns(log: string[]): string {
  return fold(log.map((t) => (t === '' ? '(data)' : fold(t.split('+'), '+'))), ' | ');
}

const r2 = (n: number, d = 2): number => Number(n.toFixed(d));

export async function runWan(o: WanOptions): Promise<void> {
  const started = performance.now();
  if (findDovecot() === undefined) throw new Error('Dovecot is needed: apt-get install dovecot-imapd dovecot-pop3d');
  const gnuTime = ensureGnuTime(o.log);
  const mbsync = mbsyncVersion();
  if (mbsync === undefined) throw new Error('mbsync is needed for the WAN comparison: apt-get install isync');
  const machine = describeMachine(findDovecot() ?? '', mbsync);
  const bin = path.join(o.root, 'bin', 'mailferry.js');
  const tools = TOOLS.filter((t) => (o.tools ?? DEFAULT_TOOLS.filter((x) => !x.startsWith('baseline') || o.baseline !== undefined)).includes(t));
  if (o.baseline === undefined && tools.some((t) => t.startsWith('baseline'))) throw new Error('--tools baseline needs --baseline DIR');
  const floor = path.join(o.root, 'dist', 'scripts', 'bench', 'fetch-floor.js');
  const work = await mkdtemp(path.join(os.tmpdir(), 'mailferry-wan-'));
  const server = await startDovecot({ users: [] });
  try {
    const user = 'src';
    const password = 'bench-src-password';
    await server.addUser({ name: user, password });
    const spec: MailboxSpec = { messages: o.messages, seed: o.seed, folders: o.folders };
    const plans = planMailbox(spec);
    for (let i = 0; i < plans.length; i += 4) {
      await seedMailbox(server, { name: user, password }, plans.slice(i, i + 4).map(generateFolder), { connections: 4 });
    }
    const truth: AccountTruth = await serverTruth({ host: server.host, imapPort: server.imapPort, user, password });
    if (truth.messages !== o.messages) throw new Error(`seeded ${truth.messages} messages, expected ${o.messages}`);
    o.log(`seeded ${truth.messages} messages, ${(truth.bytes / 1e6).toFixed(0)} MB in ${truth.folders.length} folders`);

    const one = async (tool: Tool, delayMs: number): Promise<{ m: Measured; stats: ConnectionStats[] }> => {
      const proxy = await startWanProxy({ targetPort: server.imapPort, delayMs, ...(o.bytesPerS === undefined ? {} : { bytesPerS: o.bytesPerS }) });
      const out = path.join(work, `${tool}-${delayMs}`);
      await rm(out, { recursive: true, force: true });
      const env = { [PASSWORD_ENV]: password, XDG_STATE_HOME: path.join(work, 'state', `${tool}-${delayMs}`) };
      let m: Measured;
      try {
        if (tool === 'fetch-floor') {
          m = await measure([process.execPath, floor, '--port', String(proxy.port), '--user', user, '--password-env', PASSWORD_ENV], { env });
          const got = JSON.parse(m.stdout.trim().split('\n').pop() ?? '{}') as { messages?: number };
          if (m.status !== 0 || got.messages !== truth.messages) throw new Error(`fetch floor: exit ${m.status}, ${got.messages} messages\n${m.stderr}`);
        } else if (tool === 'mbsync') {
          const conf = `${out}.conf`;
          await mkdir(conf, { recursive: true, mode: 0o700 });
          const passwordFile = path.join(conf, 'password');
          await writeFile(passwordFile, password, { mode: 0o600 });
          const file = await writeMbsyncConfig(conf, { host: '127.0.0.1', imapsPort: 0, plainPort: proxy.port, caFile: '', user, passwordFile }, out);
          m = await measure(['mbsync', '-c', file, '-a'], { env });
          if (m.status !== 0) throw new Error(`mbsync exited with ${m.status}\n${m.stdout}\n${m.stderr}`);
          await verifyArchive(`mbsync at ${delayMs} ms`, 'maildir', out, truth);
        } else {
          const base = tool.startsWith('baseline') ? path.join(o.baseline ?? '', 'bin', 'mailferry.js') : bin;
          // `node bin/mailferry.js` ignores the #! line: the same program without its memory flags.
          m = await measure([
            ...(tool === 'no-flags' ? [process.execPath] : []),
            base, 'backup',
            '--from', `imap://${user}@127.0.0.1:${proxy.port}`,
            '--tls-mode', 'plain',
            '--password-env', PASSWORD_ENV,
            '--to', `maildir:${out}`,
            '--json',
            ...(tool.endsWith('-c1') ? ['--connections', '1'] : []),
          ], { env });
          if (m.status !== 0) throw new Error(`${tool} exited with ${m.status}\n${m.stderr}`);
          await verifyArchive(`${tool} at ${delayMs} ms`, 'maildir', out, truth);
        }
      } finally {
        await proxy.close();
      }
      await rm(out, { recursive: true, force: true });
      await rm(`${out}.conf`, { recursive: true, force: true });
      return { m, stats: proxy.connections.filter((c) => c.bytesUp > 0) };
    };

    const runs = new Map<string, { m: Measured; stats: ConnectionStats[] }[]>();
    for (let round = 1; round <= o.repeat; round++) {
      for (const delayMs of o.delays) {
        for (const tool of tools) {
          const r = await one(tool, delayMs);
          const key = `${tool}@${delayMs}`;
          runs.set(key, [...(runs.get(key) ?? []), r]);
          o.log(`round ${round}, ${delayMs} ms: ${LABELS[tool]} ${r.m.wallS.toFixed(2)} s, user CPU ${r.m.userS?.toFixed(2) ?? '-'} s, RSS ${r.m.peakRssMB?.toFixed(0) ?? '-'} MB, ${r.stats.length} conn, ${r.stats.reduce((n, s) => n + s.turns, 0)} turns`);
        }
      }
    }

    const results: WanRun[] = [];
    for (const delayMs of o.delays) {
      for (const tool of tools) {
        const all = runs.get(`${tool}@${delayMs}`) ?? [];
        const sorted = [...all].sort((a, b) => a.m.wallS - b.m.wallS);
        const mid = sorted[Math.floor((sorted.length - 1) / 2)];
        if (mid === undefined) continue;
        const commands: Record<string, number> = {};
        for (const c of mid.stats) for (const [k, v] of Object.entries(c.commands)) commands[k] = (commands[k] ?? 0) + v;
        results.push({
          tool,
          delayMs,
          wallS: r2(mid.m.wallS, 3),
          roundsWallS: all.map((a) => r2(a.m.wallS, 2)),
          messagesPerS: r2(truth.messages / mid.m.wallS, 0),
          mbPerS: r2(truth.bytes / 1e6 / mid.m.wallS, 1),
          cpuS: mid.m.cpuS === null ? null : r2(mid.m.cpuS),
          peakRssMB: mid.m.peakRssMB === null ? null : r2(mid.m.peakRssMB, 0),
          vsMbsync: null,
          vsFloor: null,
          connections: mid.stats.length,
          turns: mid.stats.reduce((n, s) => n + s.turns, 0),
          maxTurns: Math.max(0, ...mid.stats.map((s) => s.turns)),
          commands,
          turnLogs: mid.stats.map((c) => foldTurns(c.turnLog)),
        });
      }
    }
    for (const r of results) {
      const same = (t: Tool): WanRun | undefined => results.find((x) => x.tool === t && x.delayMs === r.delayMs);
      const mb = same('mbsync');
      const fl = same('fetch-floor');
      if (mb !== undefined) r.vsMbsync = r2(mb.wallS / r.wallS);
      if (fl !== undefined) r.vsFloor = r2(r.wallS / fl.wallS);
    }

    const head = ['delay', 'run', 'wall s (rounds)', 'msg/s', 'MB/s', 'CPU s', 'RSS MB', 'x mbsync', 'x floor', 'conns', 'turns (max/conn)'];
    const rows = results.map((r) => [
      `${r.delayMs} ms`, LABELS[r.tool], `${r.wallS.toFixed(2)} (${r.roundsWallS.join(', ')})`, String(r.messagesPerS), String(r.mbPerS),
      String(r.cpuS ?? '-'), String(r.peakRssMB ?? '-'), r.vsMbsync === null ? '' : `${r.vsMbsync}x`, r.vsFloor === null ? '' : `${r.vsFloor}x`,
      String(r.connections), `${r.turns} (${r.maxTurns})`,
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
    const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
    process.stdout.write(`\n${line(head)}\n${rows.map(line).join('\n')}\n\n`);
    for (const r of results.filter((x) => x.delayMs === Math.max(...o.delays))) {
      process.stdout.write(`${LABELS[r.tool]} at ${r.delayMs} ms, commands: ${Object.entries(r.commands).sort().map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
      for (const [i, t] of r.turnLogs.entries()) process.stdout.write(`  connection ${i + 1} turns: ${t}\n`);
    }

    const file = path.join(o.root, 'bench', 'wan.json');
    const previous: Record<string, unknown> = existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>) : {};
    const entry = {
      measuredAt: new Date().toISOString(),
      machine,
      mailbox: { messages: truth.messages, bytes: truth.bytes, folders: truth.folders.length, seed: o.seed },
      link: { delaysMs: o.delays, bytesPerS: o.bytesPerS ?? null, note: 'one-way delay per chunk each direction (round trip 2x), plain IMAP through scripts/bench/wan-proxy.ts' },
      rounds: o.repeat,
      measuredWith: gnuTime ? 'wall: harness clock; CPU and peak RSS: GNU time -v' : 'wall only (no GNU time)',
      results,
      loadAverageAtEnd: os.loadavg().map((l) => r2(l)),
      totalSeconds: r2((performance.now() - started) / 1000, 0),
    };
    await writeFile(file, `${JSON.stringify({ ...previous, [`messages-${o.messages}-delays-${o.delays.join('-')}${o.bytesPerS === undefined ? '' : `-rate-${o.bytesPerS}`}${o.baseline === undefined && o.tools === undefined ? '' : `-runs-${tools.join('-')}`}`]: entry }, null, 2)}\n`);
    o.log(`wrote bench/wan.json (${entry.totalSeconds} s in all)`);
  } catch (e: unknown) {
    o.log(`dovecot log tail:\n${server.logTail(20)}`);
    throw e;
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}
