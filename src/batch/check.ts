import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildCli } from '../cli.js';
import { jobFlags, kebab } from '../config/job-file.js';
import { errnoCode, MailferryError } from '../domain/errors.js';
import type { RemoteEndpoint } from '../endpoints/url.js';
import { findProfile, loadProfiles, profileForHost } from '../profiles/load.js';
import type { Profile } from '../profiles/schema.js';
import { BATCH_ONLY, type BatchRow } from './file.js';
import type { Need } from './pools.js';
import { identityKey, rowIdentity, type RowIdentity } from './shard.js';

/**
 * Every row of a batch file checked as its own command line would be, before anything starts: the
 * row's object becomes flags as a `--config` job file does (config/job-file.ts: secrets by
 * reference only), the one CLI parser reads them (cli.ts, strict: an unknown flag is a problem),
 * and the command's own loader checks what they mean (the same `load` main.ts calls). Besides,
 * what only a batch can get wrong: a row naming no command or one that is not a copy, a flag that
 * belongs to the batch (`--json`, `--log-file`), a row with no secret reference (a batch never
 * prompts: rows run side by side), two rows with the same identity or the same local archive.
 * Every problem of every row is listed; any at all is a usage error (exit 2).
 */
export const BATCH_COMMANDS = ['backup', 'migrate', 'restore', 'forward'] as const;
export type BatchCommandName = (typeof BATCH_COMMANDS)[number];

/** The part of a command a batch uses: main.ts's table gives the whole Command. */
export interface RowCommand {
  load(args: Readonly<Record<string, unknown>>): unknown;
}

export interface CheckedRow {
  readonly row: BatchRow;
  readonly command: BatchCommandName;
  readonly id: RowIdentity;
  /** What the command's loader made of the row. */
  readonly cfg: unknown;
  /** The connections it opens on each account, with the caps its provider profiles give. */
  readonly needs: readonly Need[];
}

const COPIES = new Set(['backup', 'migrate', 'restore']);

export function checkRows(
  rows: readonly BatchRow[],
  commands: Readonly<Record<BatchCommandName, RowCommand>>,
  opts: { verify?: string; problems: string[]; env?: NodeJS.ProcessEnv },
): CheckedRow[] {
  const env = opts.env ?? process.env;
  const problems = opts.problems;
  const out: CheckedRow[] = [];
  const seen = new Map<string, number>();
  const archives = new Map<string, number>();
  const parseRow = rowParser();
  for (const r of rows) {
    const where = r.line === 0 ? `job ${r.row}` : `row ${r.row} (line ${r.line})`;
    const say = (p: string): void => {
      problems.push(`${where}: ${p}`);
    };
    const data = r.data;
    const name = data['command'];
    if (typeof name !== 'string' || !(BATCH_COMMANDS as readonly string[]).includes(name)) {
      say(name === undefined ? `no command (a "command" column: ${BATCH_COMMANDS.join(', ')})` : `"${String(name)}" is not a command a batch runs (${BATCH_COMMANDS.join(', ')})`);
      continue;
    }
    const command = name as BatchCommandName;
    const before = problems.length;
    for (const k of Object.keys(data)) if (BATCH_ONLY.has(kebab(k))) say(`"${k}" is a flag of the batch, not of a row`);
    const job = jobFlags(data);
    for (const p of job.problems) say(p);
    if (problems.length > before) continue;
    const verify = COPIES.has(command) && opts.verify !== undefined && !Object.keys(data).some((k) => kebab(k) === 'verify');
    const argv = [command, ...job.argv, ...(verify ? [opts.verify === '' ? '--verify' : `--verify=${opts.verify ?? ''}`] : [])];
    const args = parseRow(argv, say);
    if (args === undefined) continue;
    let cfg: unknown;
    try {
      cfg = commands[command].load(args);
    } catch (e: unknown) {
      say(e instanceof MailferryError ? e.message : String(e));
      continue;
    }
    if (asksPassword(cfg)) say('a password source is needed in every row (password-env, password-file, password-command or OAuth2): a batch never prompts');
    for (const p of secretProblems(cfg, env)) say(p);
    const id = rowIdentity(data);
    const key = identityKey(id);
    const twin = seen.get(key);
    if (twin !== undefined) say(`the same job as row ${twin} (${id.command} ${id.source} -> ${id.destinations.join(', ')})`);
    else seen.set(key, r.row);
    for (const d of twin === undefined ? id.destinations : []) {
      const local = /^(?:to|archive)=(?:maildir|mbox):(.+)$/.exec(d);
      if (local?.[1] === undefined) continue;
      const path = resolve(local[1]);
      const other = archives.get(path);
      if (other !== undefined && other !== r.row) say(`the archive ${path} is also written by row ${other}`);
      else archives.set(path, r.row);
    }
    if (problems.length > before) continue;
    out.push({ row: r, command, id, cfg, needs: needsOf(command, cfg, data) });
  }
  return out;
}

/**
 * The one CLI parser, built once for all the rows: yargs takes a new argv on each parse. Building
 * it and parsing cost ~230 ms a row on a loaded 2-core machine (2,000 rows: 8 minutes before the
 * first row started), nearly all of it laying out help text that no row shows (below).
 */
function rowParser(): (argv: string[], say: (p: string) => void) => Record<string, unknown> | undefined {
  const last: { parsed?: Record<string, unknown>; failed?: string } = {};
  const cli = buildCli([], (p) => (last.parsed = p.args))
    .exitProcess(false)
    .wrap(null)
    .fail((msg, err) => {
      last.failed ??= msg || (err instanceof Error ? err.message : String(err));
    });
  // yargs lays out the command's whole help text after every parse, to have it ready for a later
  // failure (usage.cacheHelpMessage): 85% of the time a row takes. No row shows help, so that step
  // is skipped here; should yargs' internals change, this only makes the check slower again.
  type Internals = { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } };
  const usage = (cli as unknown as Internals).getInternalMethods?.().getUsageInstance?.();
  if (usage?.cacheHelpMessage !== undefined) usage.cacheHelpMessage = () => undefined;
  return (argv, say) => {
    delete last.parsed;
    delete last.failed;
    cli.parseSync(argv);
    const failed = last.failed as string | undefined; // set by the fail handler during parseSync
    if (failed === undefined) return last.parsed;
    say(failed.replace(/\s+/g, ' ').trim());
    return undefined;
  };
}

/**
 * What can be known of a row's secrets without reading them: a variable a `*-env` flag names is
 * set, a file a `*-file` flag names is there and private (as secrets.ts will insist). Found by
 * their shape, a SecretRef (`{env}`, `{file}`), wherever the command's config holds one.
 */
function secretProblems(v: unknown, env: NodeJS.ProcessEnv, out: string[] = []): string[] {
  if (typeof v !== 'object' || v === null || Buffer.isBuffer(v)) return out;
  const keys = Object.keys(v);
  const ref = v as { env?: unknown; file?: unknown };
  if (keys.length === 1 && typeof ref.env === 'string') {
    if ((env[ref.env] ?? '') === '') out.push(`environment variable ${ref.env} is not set`);
  } else if (keys.length === 1 && typeof ref.file === 'string') {
    try {
      if ((statSync(ref.file).mode & 0o077) !== 0) out.push(`secret file ${ref.file} is readable by others; run: chmod 600 ${ref.file}`);
    } catch (e: unknown) {
      out.push(`cannot read secret file ${ref.file}: ${errnoCode(e) ?? 'error'}`);
    }
  } else for (const x of Object.values(v)) secretProblems(x, env, out);
  return out;
}

/** True when the loaded config would ask for a password on the terminal (no source given). */
function asksPassword(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Buffer.isBuffer(v)) return false;
  if ((v as { secret?: unknown }).secret === 'prompt') return true;
  return Object.values(v).some(asksPassword);
}

interface Account {
  endpoint: RemoteEndpoint;
  connections: number;
}

/**
 * The accounts a row connects to, and how many connections each: backup's source, migrate's
 * source and target, restore's target, forward's source (the SMTP relay is one connection and
 * no profile caps it). `--verify` runs after the copy, on as many connections, so it needs no more.
 */
function needsOf(command: BatchCommandName, cfg: unknown, data: Readonly<Record<string, unknown>>): Need[] {
  const c = (cfg as { copy?: unknown }).copy ?? cfg;
  const flag = (k: string): string | undefined => {
    const v = Object.entries(data).find(([key]) => kebab(key) === k)?.[1];
    return typeof v === 'string' ? v : undefined;
  };
  const accounts: { a: Account; profile: string | undefined }[] = [];
  if (command === 'backup') {
    const b = c as { from: RemoteEndpoint; connections: number };
    accounts.push({ a: { endpoint: b.from, connections: b.connections }, profile: flag('profile') });
  } else if (command === 'migrate') {
    const m = c as { source: Account; target: Account };
    accounts.push({ a: m.source, profile: flag('profile') }, { a: m.target, profile: flag('target-profile') });
  } else if (command === 'restore') {
    accounts.push({ a: (c as { target: Account }).target, profile: flag('profile') });
  } else {
    const s = (c as { source: Account | { path: string } }).source;
    if ('endpoint' in s) accounts.push({ a: s, profile: flag('profile') });
  }
  // The accounts whose daily budget the row counts (a profile's, or --max-bytes-per-day).
  const budgets = ((c as { limits?: { budgets?: { account: RemoteEndpoint }[] } }).limits?.budgets ?? []).map((b) => key(b.account));
  return accounts.map(({ a, profile }) => {
    const p = profileOf(a.endpoint, profile);
    const e = a.endpoint;
    return {
      ...(budgets.includes(key(e)) ? { exclusive: true } : {}),
      account: key(e),
      server: `${e.host.toLowerCase()}:${e.port}`,
      connections: e.kind === 'pop3' ? 1 : a.connections,
      ...(p?.limits.connections === undefined ? {} : { accountCap: p.limits.connections }),
      ...(p?.limits.serverConnections === undefined ? {} : { serverCap: p.limits.serverConnections }),
    };
  });
}

const key = (e: RemoteEndpoint): string => `${e.user}@${e.host.toLowerCase()}:${e.port}`;

let profiles: Profile[] | undefined;

/** The row's profile for an account: the one it names, else the one whose server this is. */
function profileOf(e: RemoteEndpoint, named: string | undefined): Profile | undefined {
  try {
    return named === undefined ? profileForHost((profiles ??= loadProfiles()), e.host, e.port) : findProfile(named);
  } catch {
    return undefined; // the loader has said what is wrong with it
  }
}
