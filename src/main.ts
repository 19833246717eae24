import { hideBin } from 'yargs/helpers';
import { buildCli, COMMAND_NAMES, type Parsed } from './cli.js';
import { EXIT, MailferryError } from './domain/errors.js';
import { homePath, rawFlags } from './config/flags.js';
import { configPath, readJobFile, withJobFile } from './config/job-file.js';
import { jobsCommandLine } from './batch/file.js';
import { openLogFile, teeLogger, type LogFile } from './log/file.js';
import { createLogger, redact } from './log/logger.js';
import { escapeControl, writeStdout } from './log/redact.js';
import type { Command, Output } from './commands/deps.js';

/**
 * Entry point: parse, run one command, print the summary, map errors to exit codes.
 * SIGINT/SIGTERM abort the run through an AbortController; the archive stays consistent.
 */
export async function main(words: string[]): Promise<number> {
  // `mailferry help [COMMAND]` is `mailferry [COMMAND] --help`, as git and npm have it.
  const cmdline = words[0] === 'help' ? [...words.slice(1, 2), '--help'] : words;
  let argv = cmdline;
  const jobPath = configPath(cmdline);
  if (jobPath !== undefined) {
    try {
      argv = jobsCommandLine(homePath(jobPath), cmdline) ?? withJobFile(cmdline, readJobFile(homePath(jobPath), cmdline));
    } catch (e: unknown) {
      return fatal(e instanceof MailferryError ? e : new MailferryError('usage', String(e)), cmdline.includes('--json'));
    }
  }
  let parsed: Parsed | undefined;
  let usageError: string | undefined;
  const cli = buildCli(argv, (p) => (parsed = p)).fail((msg, err) => {
    usageError ??= msg || (err instanceof Error ? err.message : String(err));
  });
  await cli.parseAsync();
  if (usageError !== undefined) {
    // One line, as every error: yargs may report over several lines. A first word that is no
    // command is named (yargs then says "Did you mean backup?", or which argument is unknown).
    const first = argv[0];
    const notCommand = first !== undefined && !first.startsWith('-') && !(COMMAND_NAMES as readonly string[]).includes(first);
    const said = usageError.replace(/\s+/g, ' ').trim();
    const line = notCommand ? `"${first}" is not a command (${COMMAND_NAMES.join(', ')}); ${said.charAt(0).toLowerCase()}${said.slice(1)}` : said;
    return fatal(new MailferryError('usage', `${line} (see mailferry --help)`), argv.includes('--json'));
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

  let code: number | undefined;
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
  // --watch runs as a service: SIGHUP (logrotate, systemctl reload) opens the --log-file again;
  // without one it is ignored.
  const onHangup = (): void => logFile?.reopen();
  const service = args['watch'] === true;
  if (service) process.on('SIGHUP', onHangup);

  try {
    const { logFile: logPath } = rawFlags<{ logFile?: string }>(args);
    if (logPath !== undefined) {
      logFile = openLogFile(logPath, debug ? 'debug' : 'info');
      log = teeLogger(stderrLog, logFile.logger);
      log.info(`mailferry ${parsed.command} started${(await import('./commands/output.js')).whereText(rawFlags(args))}`);
    }
    const out: Output = { log, json, quiet, ...(logFile === undefined ? {} : { logFile }) };
    const command = await COMMANDS[parsed.command]();
    const cfg = command.load(args);
    const { progressOutput } = await import('./commands/output.js');
    const progress = await progressOutput(out);
    const onEvent = json ? (e: Readonly<Record<string, unknown>>): void => writeStdout(JSON.stringify(e)) : undefined;
    const result = await command.run(cfg, {
      log,
      signal: controller.signal,
      debug,
      ...(progress === undefined ? {} : { onProgress: progress.update }),
      ...(onEvent === undefined ? {} : { onEvent }),
    });
    progress?.done();
    code = await command.print(result, out);
    return code;
  } catch (thrown: unknown) {
    // Once the run's signal is aborted, whatever surfaces (a cut download, a closed connection
    // read as "cannot write folder") is the interruption's doing: exit 130, the archive consistent.
    const e = controller.signal.aborted && !(thrown instanceof MailferryError && thrown.kind === 'interrupted') ? new MailferryError('interrupted', INTERRUPTED, { cause: thrown }) : thrown;
    (await import('./progress.js')).clearProgress();
    logFile?.logger.error(e instanceof Error ? e.message : String(e));
    if (e instanceof MailferryError) {
      code = fatal(e, json);
      if (debug && e.cause instanceof Error) process.stderr.write(`${redact(e.cause.stack ?? '')}\n`);
      return code;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    code = fatal(new MailferryError('internal', `internal error: ${err.message}${debug ? '' : ' (run with --debug for details)'}`), json);
    if (debug) process.stderr.write(`${redact(err.stack ?? '')}\n`);
    return code;
  } finally {
    // Every run, failed or not, ends its log with its exit code.
    logFile?.line(`mailferry ${parsed.command} exit ${code ?? EXIT.internal}`);
    logFile?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onHangup);
  }
}

/**
 * Every command, run the same way: load its config from the parsed flags (config/flags.ts, every
 * problem at once), run it, print its result. Imported when named, so that --help and a command
 * load only what they need.
 */
const COMMANDS: Record<Parsed['command'], () => Promise<Command<unknown, unknown>>> = {
  backup: async () => (await import('./commands/verify.js')).thenVerify((await import('./commands/backup.js')).BACKUP),
  restore: async () => (await import('./commands/verify.js')).thenVerify((await import('./commands/restore.js')).RESTORE),
  migrate: async () => (await import('./commands/verify.js')).thenVerify((await import('./commands/migrate.js')).MIGRATE),
  forward: async () => (await import('./commands/forward.js')).FORWARD,
  folders: async () => (await import('./commands/folders.js')).FOLDERS,
  verify: async () => (await import('./commands/verify.js')).VERIFY,
  batch: async () => (await import('./commands/batch.js')).batchCommand((name) => COMMANDS[name]()) as Promise<Command<unknown, unknown>>,
  oauth2: async () => (await import('./commands/oauth2.js')).OAUTH2 as Command<unknown, unknown>,
  profiles: async () => {
    const { printProfiles } = await import('./profiles/list.js');
    return { load: () => undefined, run: () => Promise.resolve(undefined), print: (_none, out) => printProfiles(out.json) };
  },
};

/**
 * A fatal error: one line on stderr, and with --json also one object on stdout
 * (`{"type":"error","exit":N,"kind":…,"message":…}`), so a script reading stdout always gets a
 * last line to parse. The message is redacted in both. Returns the exit code.
 */
function fatal(e: MailferryError, json: boolean): number {
  const message = redact(e.message);
  process.stderr.write(`mailferry: ${escapeControl(message)}\n`);
  if (json) writeStdout(JSON.stringify({ type: 'error', exit: e.exitCode, kind: e.kind, message }));
  return e.exitCode;
}

const INTERRUPTED = 'interrupted; the archive is consistent, rerun to resume';

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
