/**
 * The one logger, injected everywhere. Diagnostics go to stderr (results go to stdout); as JSON
 * lines when `json` is set, as plain lines otherwise. Every message passes through `redact`, which
 * removes any secret registered with it, so a password can never reach a log by accident, and a
 * plain line has its control characters escaped (a JSON line is escaped by JSON): see redact.ts.
 */
import { escapeControl, redact } from './redact.js';

export { registerSecret, redact } from './redact.js';
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface LoggerOptions {
  level: Level;
  json: boolean;
  /** Every plain line starts with an ISO time and its level (a log file). */
  stamp?: boolean;
  write?: (line: string) => void;
}

export function createLogger(opts: LoggerOptions): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const emit = (level: Level, msg: string): void => {
    if (ORDER[level] < ORDER[opts.level]) return;
    const text = redact(msg);
    if (opts.json) write(JSON.stringify({ time: new Date().toISOString(), level, msg: text }));
    else if (opts.stamp === true) write(`${new Date().toISOString()} ${level}: ${escapeControl(text)}`);
    else write(level === 'info' || level === 'debug' ? escapeControl(text) : `${level}: ${escapeControl(text)}`);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
