import { hideBin } from 'yargs/helpers';
import { rawOAuth2Flags } from './auth/flags.js';
import { buildCli, type Parsed } from './cli.js';
import { EXIT, MailferryError } from './domain/errors.js';
import { configPath, readJobFile, withJobFile } from './config/job-file.js';
import { openLogFile, teeLogger, type LogFile } from './log/file.js';
import { createLogger, redact, type Logger } from './log/logger.js';
import type { ProgressEvent } from './pipeline/run.js';
import type { RunReport } from './report.js';

/**
 * Entry point: parse, run one command, print the summary, map errors to exit codes.
 * SIGINT/SIGTERM abort the run through an AbortController; the archive stays consistent.
 */
export async function main(cmdline: string[]): Promise<number> {
  let argv = cmdline;
  const jobPath = configPath(cmdline);
  if (jobPath !== undefined) {
    try {
      argv = withJobFile(cmdline, readJobFile(jobPath, cmdline));
    } catch (e: unknown) {
      process.stderr.write(`mailferry: ${e instanceof Error ? e.message : String(e)}\n`);
      return e instanceof MailferryError ? e.exitCode : EXIT.internal;
    }
  }
  let parsed: Parsed | undefined;
  let usageError: string | undefined;
  const cli = buildCli(argv, (p) => (parsed = p)).fail((msg, err) => {
    usageError = msg || (err instanceof Error ? err.message : String(err));
  });
  await cli.parseAsync();
  if (usageError !== undefined) {
    // One line, as every error: yargs may report over several lines.
    process.stderr.write(`mailferry: ${usageError.replace(/\s+/g, ' ').trim()} (see mailferry --help)\n`);
    return EXIT.usage;
  }
  if (parsed === undefined) return EXIT.ok; // --help or --version
  const args = parsed.args;
  const json = args['json'] === true;
  const quiet = args['quiet'] === true;
  const debug = args['debug'] === true;
  // stderrLine: while the progress line is on the terminal, a warning goes on a fresh line above it.
  const { stderrLine } = await import('./progress.js');
  const stderrLog = createLogger({ level: debug ? 'debug' : quiet ? 'error' : 'warn', json, write: stderrLine });
  let logFile: LogFile | undefined;
  let log = stderrLog;

  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(EXIT.interrupted);
    log.warn('interrupted: stopping; what is archived stays, a rerun resumes (Ctrl-C again quits at once)');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const logPath = args['logFile'] as string | undefined;
    if (logPath !== undefined) {
      logFile = openLogFile(logPath, debug ? 'debug' : 'info');
      log = teeLogger(stderrLog, logFile.logger);
      log.info(`mailferry ${parsed.command} started`);
    }
    const out = { log, json, quiet, ...(logFile === undefined ? {} : { logFile }) };
    if (parsed.command === 'forward') {
      const { runForward } = await import('./commands/forward-cli.js');
      const progress = await progressOutput(out);
      const deps = { log, signal: controller.signal, debug, ...(progress === undefined ? {} : { onProgress: progress.update }) };
      const result = await runForward(args, deps);
      progress?.done();
      return await printResult(result, out);
    }
    if (parsed.command === 'profiles') return (await import('./profiles/list.js')).printProfiles(json);
    if (parsed.command !== 'backup') return await runTransfer(parsed.command, args, { ...out, signal: controller.signal, debug });
    const { loadBackupConfig } = await import('./config/backup.js');
    const { backup } = await import('./commands/backup.js');
    const cfg = loadBackupConfig({
      from: args['from'] as string | undefined,
      to: args['to'] as string[] | undefined,
      passwordEnv: args['passwordEnv'] as string | undefined,
      passwordFile: args['passwordFile'] as string | undefined,
      passwordCommand: args['passwordCommand'] as string | undefined,
      oauth2: rawOAuth2Flags(args),
      tlsMode: args['tlsMode'] as string | undefined,
      tlsInsecure: args['tlsInsecure'] as boolean | undefined,
      ca: args['ca'] as string | undefined,
      connections: args['connections'] as number | undefined,
      include: args['include'] as string[] | undefined,
      exclude: args['exclude'] as string[] | undefined,
      layout: args['layout'] as string | undefined,
      batchMb: args['batchMb'] as number | undefined,
      delete: args['delete'] as boolean | undefined,
      deleteOlderThan: args['deleteOlderThan'] as string | undefined,
      // yargs reads --no-uidl as the negation of a (hidden) --uidl.
      noUidl: args['uidl'] === false || args['noUidl'] === true,
      user: args['user'] as string | undefined,
      profile: args['profile'] as string | undefined,
      protocol: args['protocol'] as string | undefined,
      allFolders: args['allFolders'] as boolean | undefined,
      maxBytesPerDay: args['maxBytesPerDay'] as string | undefined,
      maxBytesPerSecond: args['maxBytesPerSecond'] as string | undefined,
      ...filterFlags(args),
    });
    const progress = await progressOutput(out);
    const report = await backup(cfg, {
      log,
      signal: controller.signal,
      debug,
      ...(progress === undefined ? {} : { onProgress: progress.update }),
    });
    progress?.done();
    return printOutcome(report, out);
  } catch (e: unknown) {
    (await import('./progress.js')).clearProgress();
    logFile?.logger.error(e instanceof Error ? e.message : String(e));
    if (e instanceof MailferryError) {
      process.stderr.write(`mailferry: ${redact(e.message)}\n`);
      if (debug && e.cause instanceof Error) process.stderr.write(`${redact(e.cause.stack ?? '')}\n`);
      return e.exitCode;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(`mailferry: internal error: ${redact(err.message)}${debug ? '' : ' (run with --debug for details)'}\n`);
    if (debug) process.stderr.write(`${redact(err.stack ?? '')}\n`);
    return EXIT.internal;
  } finally {
    logFile?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `restore` and `migrate`: load the config (all problems at once), run, print the plan or summary. */
async function runTransfer(
  command: 'restore' | 'migrate',
  args: Record<string, unknown>,
  o: Output & { signal: AbortSignal; debug: boolean },
): Promise<number> {
  const str = (k: string): string | undefined => args[k] as string | undefined;
  const common = {
    from: str('from'),
    to: str('to'),
    passwordEnv: str('passwordEnv'),
    passwordFile: str('passwordFile'),
    passwordCommand: str('passwordCommand'),
    oauth2: rawOAuth2Flags(args),
    tlsMode: str('tlsMode'),
    tlsInsecure: args['tlsInsecure'] as boolean | undefined,
    ca: str('ca'),
    connections: args['connections'] as number | undefined,
    include: args['include'] as string[] | undefined,
    exclude: args['exclude'] as string[] | undefined,
    layout: str('layout'),
    batchMb: args['batchMb'] as number | undefined,
    dryRun: args['dryRun'] as boolean | undefined,
    state: str('state'),
    map: args['map'] as string[] | undefined,
    syncDeletions: args['syncDeletions'] as boolean | undefined,
    user: str('user'),
    profile: str('profile'),
    maxBytesPerDay: str('maxBytesPerDay'),
    maxBytesPerSecond: str('maxBytesPerSecond'),
    ...filterFlags(args),
  };
  const progress = await progressOutput(o);
  const deps = { log: o.log, signal: o.signal, debug: o.debug, ...(progress === undefined ? {} : { onProgress: progress.update }) };
  let result: import('./commands/transfer.js').TransferResult;
  if (command === 'restore') {
    const { loadRestoreConfig } = await import('./config/transfer.js');
    const { restore } = await import('./commands/restore.js');
    result = await restore(loadRestoreConfig(dropUndefined(common)), deps);
  } else {
    const { loadMigrateConfig } = await import('./config/transfer.js');
    const { migrate } = await import('./commands/migrate.js');
    const cfg = loadMigrateConfig(
      dropUndefined({
        ...common,
        targetPasswordEnv: str('targetPasswordEnv'),
        targetPasswordFile: str('targetPasswordFile'),
        targetPasswordCommand: str('targetPasswordCommand'),
        targetOauth2: rawOAuth2Flags(args, 'target'),
        targetTlsMode: str('targetTlsMode'),
        targetTlsInsecure: args['targetTlsInsecure'] as boolean | undefined,
        targetCa: str('targetCa'),
        targetConnections: args['targetConnections'] as number | undefined,
        archive: args['archive'] as string[] | undefined,
        targetUser: str('targetUser'),
        targetProfile: str('targetProfile'),
        allFolders: args['allFolders'] as boolean | undefined,
      }),
    );
    result = await migrate(cfg, deps);
  }
  progress?.done();
  return printResult(result, o);
}

/** The plan of a dry run, or the summary of a run; the exit code. */
async function printResult(result: import('./commands/transfer.js').TransferResult, o: Output): Promise<number> {
  const { report, plan } = result;
  if (plan === undefined) return printOutcome(report, o, { state: result.statePath });
  const { planText } = await import('./commands/transfer.js');
  if (o.json) process.stdout.write(`${JSON.stringify({ type: 'plan', state: result.statePath, folders: plan })}\n`);
  else if (!o.quiet) process.stdout.write(`${planText(plan)}\n`);
  return report.exitCode;
}

/** Where results go: stdout (JSON lines with --json, nothing with --quiet), the --log-file. */
interface Output {
  log: Logger;
  json: boolean;
  quiet: boolean;
  logFile?: LogFile;
}

/**
 * Progress: JSON lines on stdout with --json (one per folder planned and per batch copied), a
 * redrawn line on a TTY; nothing otherwise (cron).
 */
async function progressOutput(o: Output): Promise<{ update: (r: RunReport, e: ProgressEvent) => void; done: () => void } | undefined> {
  if (o.json) {
    return {
      update: (r, e) =>
        process.stdout.write(
          `${JSON.stringify({ type: 'progress', event: e.type, mailbox: e.mailbox, messages: r.messages, bytes: r.bytes, planned: r.planned, plannedBytes: r.plannedBytes })}\n`,
        ),
      done: () => undefined,
    };
  }
  if (!process.stderr.isTTY || o.quiet) return undefined;
  const { ttyProgress } = await import('./progress.js');
  return ttyProgress(process.stderr);
}

/** Skipped items on stderr, the summary on stdout (a JSON object with --json) and in the log file; the exit code. */
function printOutcome(report: RunReport, o: Output, extra: Record<string, unknown> = {}): number {
  for (const s of report.skipped) o.log.warn(`skipped ${s.mailbox}${s.id === undefined ? '' : ` message ${s.id}`}: ${s.reason}`);
  if (o.json) process.stdout.write(`${JSON.stringify({ type: 'summary', ...report.toJSON(), ...extra })}\n`);
  else if (!o.quiet) process.stdout.write(`${report.summary()}\n`);
  o.logFile?.line(`${report.summary()} (exit ${report.exitCode})`);
  return report.exitCode;
}

/** --since, --before, --max-size, --unseen-only as typed (config/filter.ts checks them). */
function filterFlags(args: Record<string, unknown>): import('./config/filter.js').RawFilterFlags {
  return dropUndefined({
    since: args['since'] as string | undefined,
    before: args['before'] as string | undefined,
    maxSize: args['maxSize'] as string | undefined,
    unseenOnly: args['unseenOnly'] as boolean | undefined,
  });
}

/** Flags not given are left out (exactOptionalPropertyTypes-friendly raw flags). */
function dropUndefined<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

export function run(): void {
  main(hideBin(process.argv)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`mailferry: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = EXIT.internal;
    },
  );
}
