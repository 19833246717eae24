import { describeEndpoint, parseEndpoint, parseSmtpEndpoint } from '../endpoints/url.js';
import { writeStdout } from '../log/redact.js';
import type { ProgressEvent } from '../pipeline/run.js';
import type { RunReport } from '../report.js';
import type { Output } from './deps.js';
import type { PlannedFolder } from './dry-run.js';
import type { TransferResult } from './transfer.js';

/**
 * What a command prints: progress while it runs, then the plan of a dry run or the summary of a
 * run; skipped items on stderr; the summary also in the --log-file. Everything on stdout is redacted
 * (log/redact.ts): a server echoing the password in a refusal must not put it in `skipped[].reason`.
 */

/**
 * Progress: JSON lines on stdout with --json, one per ProgressEvent (pipeline/run.ts) but `listing`
 * (it says nothing a script needs, and a login refused while listing must leave the error object
 * alone on stdout): `planning` (`folders` to plan, `plannedFolders` planned so far), `planned`
 * per folder, `bytes` while messages arrive (at most 4 a second; `streaming`: bytes received, not yet committed, in
 * no other figure) and `batch` per batch committed; each with the run's totals (`messages`,
 * `bytes` committed, `planned`, `plannedBytes`) and, for a folder's event, `mailbox` and its own
 * figures under `folder`. A redrawn line on a TTY; nothing otherwise (cron).
 */
export async function progressOutput(o: Output): Promise<{ update: (r: RunReport, e: ProgressEvent) => void; done: () => void } | undefined> {
  if (o.json) {
    return {
      update: (r, e) => {
        if (e.type === 'listing') return;
        const about =
          e.type === 'planning' ? { folders: e.folders, plannedFolders: e.plannedFolders } : { mailbox: e.mailbox, ...('streaming' in e ? { streaming: e.streaming } : {}) };
        const folder = 'mailbox' in e ? r.perFolder.get(e.mailbox) : undefined;
        writeStdout(JSON.stringify({ type: 'progress', event: e.type, ...about, messages: r.messages, bytes: r.bytes, planned: r.planned, plannedBytes: r.plannedBytes, folder }));
      },
      done: () => undefined,
    };
  }
  if (!process.stderr.isTTY || o.quiet) return undefined;
  const { ttyProgress } = await import('../progress.js');
  return ttyProgress(process.stderr);
}

/** Skipped items on stderr, the summary on stdout (a JSON object with --json) and in the log file; the exit code. */
export function printOutcome(report: RunReport, o: Output, extra: Record<string, unknown> = {}): number {
  for (const s of report.skipped) o.log.warn(`skipped ${s.mailbox}${s.id === undefined ? '' : ` message ${s.id}`}: ${s.reason}`);
  if (o.json) writeStdout(JSON.stringify({ type: 'summary', ...report.toJSON(), ...extra }));
  else if (!o.quiet) writeStdout(report.summary());
  o.logFile?.line(`${report.summary()} (exit ${report.exitCode})`);
  return report.exitCode;
}

/** backup, restore, migrate, forward: the plan of a dry run, or the summary of a run with where the state lives; the exit code. */
export function printResult(result: TransferResult, o: Output): number {
  const { report, plan } = result;
  if (plan === undefined) return printOutcome(report, o, { state: result.statePath });
  if (o.json) writeStdout(JSON.stringify({ type: 'plan', state: result.statePath, folders: plan }));
  else if (!o.quiet) writeStdout(planText(plan));
  return report.exitCode;
}

/** The plan as text lines for a terminal. */
export function planText(plan: readonly PlannedFolder[]): string {
  const to = (p: PlannedFolder): string => (p.target === undefined || p.target === p.mailbox ? '' : ` -> ${p.target}`);
  const remove = (p: PlannedFolder): string => (p.remove === undefined ? '' : `, ${p.remove} to remove (deleted on the source)`);
  const present = (p: PlannedFolder): string => (p.present === undefined || p.present === 0 ? '' : ` (${p.present} already there)`);
  const lines = plan.map((p) => `  ${p.mailbox}${to(p)}: ${p.messages} messages, ${(p.bytes / 1e6).toFixed(2)} MB${present(p)}${p.create === true ? ', new folder' : ''}${remove(p)}`);
  const messages = plan.reduce((n, p) => n + p.messages, 0);
  const bytes = plan.reduce((n, p) => n + p.bytes, 0);
  return [`dry run: nothing was changed; a real run would copy ${messages} messages (${(bytes / 1e6).toFixed(2)} MB) in ${plan.length} folders:`, ...lines].join('\n');
}

/**
 * Where a run goes, from its raw flags, for the --log-file's first line: `: from imaps://me@host:993
 * (or --user), to maildir:/abs/path, ...`. Endpoints are shown parsed (absolute, never a secret);
 * one that does not parse is left out (the loader reports it).
 */
export function whereText(raw: Readonly<Record<string, unknown>>): string {
  const shown = (text: unknown, parse: (t: string) => string = (t) => describeEndpoint(parseEndpoint(t))): string[] => {
    const all = Array.isArray(text) ? (text as unknown[]) : [text];
    return all.flatMap((t) => {
      try {
        return typeof t === 'string' ? [parse(t)] : [];
      } catch {
        return [];
      }
    });
  };
  const parts = [
    ...shown(raw['from']).map((x) => `from ${x}`),
    ...shown(raw['user'], (t) => t).map((x) => `user ${x}`),
    ...shown(raw['to']).map((x) => `to ${x}`),
    ...shown(raw['targetUser'], (t) => t).map((x) => `target user ${x}`),
    ...shown(raw['archive']).map((x) => `archive ${x}`),
    ...shown(raw['smtp'], (t) => describeEndpoint(parseSmtpEndpoint(t))).map((x) => `relay ${x}`),
    ...shown(raw['rcpt'], (t) => t).map((x) => `rcpt ${x}`),
  ];
  return parts.length === 0 ? '' : `: ${parts.join(', ')}`;
}
