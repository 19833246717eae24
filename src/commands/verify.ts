import { credentialsFor } from '../auth/login.js';
import { rawFlags } from '../config/flags.js';
import { loadVerifyConfig, type RawVerifyFlags, type VerifyConfig } from '../config/verify.js';
import type { MailboxInfo } from '../domain/message.js';
import { EXIT, MailferryError } from '../domain/errors.js';
import { mapFolder, targetRoles, type MapRule } from '../drivers/imap/folder-map.js';
import { ImapSource } from '../drivers/imap/source.js';
import type { RemoteAccount } from '../config/account.js';
import { describeEndpoint, type LocalEndpoint } from '../endpoints/url.js';
import { ROLE_FLAG, type FolderRole } from '../profiles/schema.js';
import { filterSource } from '../sources/filter.js';
import { ProfileRolesSource } from '../sources/profile-roles.js';
import { LabelHomes } from '../sources/label-homes.js';
import { keepsLabels } from './backup.js';
import type { Source } from '../sources/source.js';
import { verifyCopy, type Recorded, type VerifyProgress } from '../verify/compare.js';
import { targetKey } from '../drivers/imap/target.js';
import { Checkpoint } from '../state/checkpoint.js';
import type { Logger } from '../log/logger.js';
import { defaultStatePath } from './target.js';
import { RunReport } from '../report.js';
import type { Difference, VerifyOutcome } from '../verify/difference.js';
import type { Command, CommandDeps, Output } from './deps.js';
import { accountSource, archiveSource, type SourceOptions } from './sources.js';

/**
 * `mailferry verify`: prove a copy message by message (src/verify/compare.ts), with the flags of
 * the command that made it (config/verify.ts). Both the source and each copy are opened as
 * Sources, read only: an IMAP account with EXAMINE and BODY.PEEK (no \Seen set), an archive by its
 * Maildir or mbox source without taking its lock (as restore reads one: an mbox up to its
 * committed length), no state file written. Exit 0 when nothing differs, EXIT.differences (9)
 * when something does; each difference is listed. Progress goes where a copy's goes (main.ts:
 * a redrawn line on a terminal, JSON lines with --json, nothing under cron or --quiet).
 */
export interface VerifyResult {
  outcomes: VerifyOutcome[];
  differences: Difference[];
}

interface Copy {
  source: Source;
  destination: string;
  place(m: MailboxInfo): Promise<string>;
  recorded?: (source: MailboxInfo, copy: MailboxInfo) => Promise<Recorded | undefined>;
}

export async function verify(cfg: VerifyConfig, deps: CommandDeps): Promise<VerifyResult> {
  const o: SourceOptions = { streamThreshold: cfg.copy.streamThreshold, maxMessageSize: cfg.copy.maxMessageSize, signal: deps.signal, log: deps.log, debug: deps.debug ?? false };
  const opened: Source[] = [];
  const open = <S extends Source>(s: S): S => {
    opened.push(s);
    return s;
  };
  try {
    let source: Source;
    const copies: Copy[] = [];
    // Read as the copy was made: a Gmail account in Gmail mode where the copy kept its labels
    // (a backup into archives; migrate and restore with --labels keywords, through LabelHomes as
    // they do), and an archive written so in Gmail mode too (one plain otherwise).
    let gmail = false;
    const archive = async (e: LocalEndpoint): Promise<Copy> => ({
      source: open(await archiveSource(e, cfg.copy.layout, o, gmail)),
      destination: describeEndpoint(e),
      place: (m) => Promise.resolve(m.path),
    });
    if (cfg.mode === 'backup') {
      const c = cfg.copy;
      const credentials = credentialsFor(c.auth, c.from);
      await credentials.get();
      gmail = keepsLabels(c);
      source = open(accountSource({ endpoint: c.from, credentials, ...(c.ca === undefined ? {} : { ca: c.ca }), insecure: c.insecure, connections: c.connections, noUidl: c.noUidl, labels: gmail }, o));
      for (const to of c.to) copies.push(await archive(to));
    } else if (cfg.mode === 'restore') {
      const keywords = cfg.copy.labels === 'keywords';
      const archived = open(await archiveSource(cfg.copy.from, cfg.copy.layout, o, keywords));
      source = keywords ? new LabelHomes(archived) : archived;
      copies.push(await imapCopy(cfg.copy.target, cfg.copy.map, cfg.copy.targetRoles, o, open, { path: cfg.copy.statePath, source: source.identity }));
    } else {
      const c = cfg.copy;
      const credentials = credentialsFor(c.source.auth, c.source.endpoint);
      await credentials.get();
      const keywords = c.labels === 'keywords';
      const account = open(accountSource({ ...c.source, credentials, labels: keywords }, o));
      source = new ProfileRolesSource(keywords ? new LabelHomes(account) : account, c.sourceRoles);
      copies.push(await imapCopy(c.target, c.map, c.targetRoles, o, open, { path: c.statePath, source: account.identity }));
      for (const a of c.archives) copies.push(await archive(a));
    }
    const filtered = filterSource(source, cfg.copy.filter, deps.log);
    const differences: Difference[] = [];
    const outcomes: VerifyOutcome[] = [];
    const popSource = cfg.mode !== 'restore' && (cfg.mode === 'backup' ? cfg.copy.from : cfg.copy.source.endpoint).kind === 'pop3';
    // The progress display a copy has (a line on a terminal; nothing under cron or --quiet):
    // the folders of every copy, their messages counted as compared.
    const progress = new RunReport();
    const onProgress =
      deps.onProgress === undefined
        ? undefined
        : (copy: Copy) =>
            (e: VerifyProgress): void => {
              if (e.type === 'planned') {
                progress.planned += e.messages;
                progress.plannedBytes += e.bytes;
              } else {
                progress.messages += e.messages;
                progress.bytes += e.bytes;
              }
              const mailbox = copies.length > 1 ? `${copy.destination} ${e.mailbox}` : e.mailbox;
              deps.onProgress?.(progress, { ...e, mailbox });
            };
    for (const copy of copies) {
      outcomes.push(
        await verifyCopy(filtered, copy.source, copy.destination, {
          depth: cfg.depth,
          include: cfg.copy.include,
          exclude: cfg.copy.exclude,
          place: copy.place,
          ...(copy.recorded === undefined ? {} : { recorded: copy.recorded }),
          sourceHasFlags: !popSource,
          ignore: cfg.ignore,
          batchBytes: cfg.copy.batchBytes,
          batchMessages: cfg.copy.batchMessages,
          signal: deps.signal,
          log: deps.log,
          onDifference: (d) => differences.push(d),
          ...(onProgress === undefined ? {} : { onProgress: onProgress(copy) }),
        }),
      );
    }
    return { outcomes, differences };
  } finally {
    for (const s of opened) await s.close();
  }
}

/**
 * An IMAP target read back as a Source, where each source folder went on it (drivers/imap/folder-map.ts,
 * as migrate and restore decide), and which target UID holds which source message: the APPENDUID
 * answers (RFC 4315) the copy's state on this machine recorded (`--state`, else the default path
 * of the pair, commands/target.ts), read without its lock and never written.
 */
async function imapCopy(
  a: RemoteAccount,
  map: readonly MapRule[],
  roles: Partial<Record<FolderRole, string>>,
  o: SourceOptions,
  open: <S extends Source>(s: S) => S,
  state: { path: string | undefined; source: string },
): Promise<Copy> {
  const credentials = credentialsFor(a.auth, a.endpoint);
  await credentials.get();
  const target = open(new ImapSource({ endpoint: a.endpoint, credentials, ...(a.ca === undefined ? {} : { ca: a.ca }), insecure: a.insecure, connections: a.connections, ...o }));
  const destination = describeEndpoint(a.endpoint);
  let ctx: Parameters<typeof mapFolder>[1] | undefined;
  let checkpoint: Promise<Checkpoint | undefined> | undefined;
  return {
    source: target,
    destination,
    recorded: async (s, c) => {
      checkpoint ??= readState(state.path ?? defaultStatePath(state.source, destination), state.source, o.log);
      return appendUids(await checkpoint, s.path, c.uidValidity);
    },
    place: async (m) => {
      if (ctx === undefined) {
        const listed = await target.mailboxes();
        const delimiter = listed.find((l) => l.delimiter !== '')?.delimiter ?? null;
        const named = new Map(Object.entries(roles).map(([role, path]) => [ROLE_FLAG[role as FolderRole], path]));
        ctx = { rules: map, delimiter, roles: targetRoles(listed, delimiter, named), where: destination };
      }
      try {
        return mapFolder(m, ctx).path;
      } catch {
        return m.path; // a name the target cannot hold: the copy has no such folder either
      }
    },
  };
}

/** A copy's state, to read its records; none (content pairing only) when it is missing, corrupt or another account's. */
async function readState(path: string, source: string, log: Logger): Promise<Checkpoint | undefined> {
  try {
    return await Checkpoint.load(path, source);
  } catch (e: unknown) {
    if (!(e instanceof MailferryError)) throw e;
    log.warn(`verify: the copy's state ${path} is not used (${e.message}); messages are paired by content`);
    return undefined;
  }
}

/**
 * The target UIDs an IMAP target's state records for a source folder (APPENDUID or a re-match),
 * as the copy's ids -> source ids under the source UIDVALIDITY they were recorded for; only while
 * the target folder's UIDVALIDITY is still the recorded one and no re-match is half done.
 */
function appendUids(cp: Checkpoint | undefined, path: string, targetValidity: bigint | undefined): Recorded | undefined {
  const f = cp?.folder(path);
  const t = cp?.folder(targetKey(path));
  if (f?.targetUids === undefined || f.rematching === true || f.uidValidity === undefined || !/^-?\d+$/.test(f.uidValidity)) return undefined;
  if (targetValidity === undefined || t?.uidValidity !== targetValidity.toString()) return undefined;
  const uidValidity = BigInt(f.uidValidity);
  return new Map([...f.targetUids].filter(([id]) => f.ids.has(id)).map(([id, uid]) => [String(uid), { uidValidity, id }]));
}

export function printVerify(result: VerifyResult, out: Output): number {
  const failed = result.outcomes.some((x) => x.differences > 0);
  if (out.json) for (const d of result.differences) process.stdout.write(`${JSON.stringify({ type: 'difference', ...d })}\n`);
  else if (!out.quiet && result.differences.length > 0) {
    // A table on a terminal; one line each otherwise (grep, cron mail).
    const text = process.stderr.isTTY ? differenceTable(result.differences) : result.differences.map(differenceLine).join('\n');
    process.stderr.write(`${text}\n`);
  }
  const line = summary(result);
  if (out.json) process.stdout.write(`${JSON.stringify({ type: 'verify', ok: !failed, copies: result.outcomes })}\n`);
  else if (!out.quiet) process.stdout.write(`${line}\n`);
  out.logFile?.line(line);
  return failed ? EXIT.differences : EXIT.ok;
}

function differenceLine(d: Difference): string {
  const where = d.target === undefined ? d.folder : `${d.folder} -> ${d.target}`;
  const id = d.id === undefined ? (d.copyId === undefined ? '' : ` copy id ${d.copyId}`) : ` id ${d.id}`;
  const who = [d.messageId, d.subject === undefined ? undefined : `"${d.subject}"`].filter((x) => x !== undefined).join(' ');
  return `${d.kind} ${d.destination} ${where}${id}${who === '' ? '' : ` ${who}`}: ${d.detail}`;
}

/** The differences as a table: a header, then one row each, columns padded (the detail last, unpadded). */
export function differenceTable(ds: readonly Difference[]): string {
  const rows = [
    ['KIND', 'COPY', 'FOLDER', 'ID', 'MESSAGE', 'WHAT DIFFERS'],
    ...ds.map((d) => [
      d.kind,
      d.destination,
      d.target === undefined ? d.folder : `${d.folder} -> ${d.target}`,
      d.id ?? (d.copyId === undefined ? '' : `(copy) ${d.copyId}`),
      d.messageId ?? (d.subject === undefined ? '' : `"${d.subject}"`),
      d.detail,
    ]),
  ];
  const widths = rows[0]?.map((_c, i) => Math.max(...rows.map((r) => [...(r[i] ?? '')].length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - [...c].length))).join('  ')).join('\n');
}

function summary(result: VerifyResult): string {
  return result.outcomes
    .map((x) => {
      const sum = (k: 'source' | 'missing' | 'extra' | 'altered' | 'flags' | 'dates' | 'known'): number => x.folders.reduce((n, f) => n + f[k], 0);
      const head = `verify ${x.destination} (${x.depth}): ${sum('source')} messages in ${x.folders.length} folders`;
      const known = sum('known') > 0 ? `, ${sum('known')} known differences` : '';
      if (x.differences === 0) return `${head}: no differences${known}`;
      const parts = [
        `${sum('missing')} missing`,
        `${sum('extra')} extra`,
        `${sum('altered')} altered`,
        `${sum('flags')} flags`,
        `${sum('dates')} dates`,
        `${x.foldersMissing} folders missing`,
        `${x.foldersExtra} folders extra`,
      ];
      return `${head}: ${x.differences} differences (${parts.join(', ')})${known}`;
    })
    .join('\n');
}

export const VERIFY: Command<VerifyConfig, VerifyResult> = {
  load: (args) => loadVerifyConfig(rawFlags(args)),
  run: verify,
  print: printVerify,
};

/**
 * `backup --verify`, `migrate --verify`, `restore --verify`: the copy command, then verify with the
 * same flags (`--verify` or `--verify=quick`: the quick check; `--verify=full`: digests). The exit
 * code is the copy's when it is not 0, else verify's. Not in a dry run (nothing was copied).
 */
export function thenVerify<C, R>(copy: Command<C, R>): Command<{ copy: C; verify?: VerifyConfig }, { copy: R; verify?: VerifyResult }> {
  return {
    load: (args) => {
      const depth = args['verify'];
      const problems: string[] = [];
      if (depth !== undefined && depth !== '' && depth !== 'quick' && depth !== 'full') problems.push(`--verify=${String(depth)}: expected --verify, --verify=quick or --verify=full`);
      let cfg: C | undefined;
      try {
        cfg = copy.load(args);
      } catch (e: unknown) {
        if (!(e instanceof MailferryError) || e.kind !== 'usage') throw e;
        problems.push(e.message);
      }
      if (problems.length > 0 || cfg === undefined) throw new MailferryError('usage', problems.join('; '));
      if (depth === undefined || args['dryRun'] === true) return { copy: cfg };
      const to = args['to'];
      const raw = { ...rawFlags<RawVerifyFlags>(args), ...(typeof to === 'string' ? { to: [to] } : {}), quick: depth !== 'full' };
      return { copy: cfg, verify: loadVerifyConfig(raw) };
    },
    run: async (cfg, deps) => {
      const result = await copy.run(cfg.copy, deps);
      return { copy: result, ...(cfg.verify === undefined ? {} : { verify: await verify(cfg.verify, deps) }) };
    },
    print: async (result, out) => {
      const code = await copy.print(result.copy, out);
      if (result.verify === undefined) return code;
      const checked = printVerify(result.verify, out);
      return code !== EXIT.ok ? code : checked;
    },
  };
}
