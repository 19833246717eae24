import { hideBin } from 'yargs/helpers';
import { buildCli, type Parsed } from './cli.js';
import { EXIT, MailferryError } from './domain/errors.js';
import { configPath, readJobFile, withJobFile } from './config/job-file.js';
import { openLogFile, teeLogger, type LogFile } from './log/file.js';
import { createLogger, redact } from './log/logger.js';
import type { Command, Output } from './commands/deps.js';

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
    const out: Output = { log, json, quiet, ...(logFile === undefined ? {} : { logFile }) };
    const command = await COMMANDS[parsed.command]();
    const cfg = command.load(args);
    const { progressOutput } = await import('./commands/output.js');
    const progress = await progressOutput(out);
    const result = await command.run(cfg, { log, signal: controller.signal, debug, ...(progress === undefined ? {} : { onProgress: progress.update }) });
    progress?.done();
    return await command.print(result, out);
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
  verify: async () => (await import('./commands/verify.js')).VERIFY,
  profiles: async () => {
    const { printProfiles } = await import('./profiles/list.js');
    return { load: () => undefined, run: () => Promise.resolve(undefined), print: (_none, out) => printProfiles(out.json) };
  },
};

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
