import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { MailferryError, errnoCode } from '../domain/errors.js';
import { createLogger, type Level, type Logger } from './logger.js';

/**
 * `--log-file FILE`: a log for cron and systemd runs, appended to (created 0600, its folder 0700
 * if missing), one line per
 * event with an ISO time and level, at `info` (or `debug` with --debug) whatever --quiet says, and
 * the run's summary at the end. Written synchronously, so a second Ctrl-C or a crash loses no line;
 * it passes through the same redaction as every log line.
 */
export interface LogFile {
  readonly logger: Logger;
  /** A result line (the summary) that goes to stdout too. */
  line(text: string): void;
  /** Close and open the file again by its path (SIGHUP: logrotate moved it away). */
  reopen(): void;
  close(): void;
}

export function openLogFile(path: string, level: Level): LogFile {
  const open = (): number => {
    try {
      // A first cron run on a fresh account: the log's folder (~/.local/state/mailferry, say) is made.
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      return openSync(path, 'a', 0o600);
    } catch (e: unknown) {
      throw new MailferryError('usage', `cannot open --log-file ${path}: ${errnoCode(e) ?? 'error'}`);
    }
  };
  let fd = open();
  const write = (line: string): void => {
    try {
      writeSync(fd, `${line}\n`);
    } catch {
      // A full disk must not turn a finished backup into a failure; stderr still has the errors.
    }
  };
  const logger = createLogger({ level, json: false, stamp: true, write });
  return {
    logger,
    line: (text) => logger.info(text),
    reopen: () => {
      // The old file stays in use when the new one cannot be opened: a line lost is worse than a line misplaced.
      let next: number;
      try {
        next = open();
      } catch {
        return;
      }
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
      fd = next;
    },
    close: () => {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    },
  };
}

/** One logger writing to several. */
export function teeLogger(...loggers: Logger[]): Logger {
  return {
    debug: (m) => loggers.forEach((l) => l.debug(m)),
    info: (m) => loggers.forEach((l) => l.info(m)),
    warn: (m) => loggers.forEach((l) => l.warn(m)),
    error: (m) => loggers.forEach((l) => l.error(m)),
  };
}
