/**
 * A long-running CLI (`mailferry … --watch --json`) as a child process whose stdout JSON lines are
 * read as they come, so a test can wait for an event (`until`), act (deliver mail, kick sessions,
 * restart Dovecot, send a signal) and wait again. Lines that are not JSON are kept in `text`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI_BIN, REPO_ROOT } from './cli.js';

export type Event = Record<string, unknown>;

export interface Watching {
  child: ChildProcess;
  events: Event[];
  stderr(): string;
  /** The first event (from `from` on) that `match` accepts; rejects after `ms` with stderr. */
  until(match: (e: Event) => boolean, ms?: number, from?: number): Promise<Event>;
  /** Resolves with the exit status (null when killed by a signal) and the ms since `since`. */
  exited: Promise<{ status: number | null; signal: NodeJS.Signals | null; at: number }>;
}

export function startWatch(args: string[], env: Record<string, string> = {}): Watching {
  const child = spawn(process.execPath, [CLI_BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Event[] = [];
  let err = '';
  let rest = '';
  const waiters = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    rest += d;
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      try {
        events.push(JSON.parse(line) as Event);
      } catch {
        events.push({ type: 'text', text: line });
      }
    }
    for (const w of [...waiters]) w();
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('close', (status, signal) => {
      for (const w of [...waiters]) w();
      resolve({ status, signal, at: Date.now() });
    }),
  );
  const until = (match: (e: Event) => boolean, ms = 20_000, from = 0): Promise<Event> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = events.slice(from).find(match);
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          done();
          reject(new Error(`exited (${String(child.exitCode ?? child.signalCode)}) before the event; stderr:\n${err}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no such event within ${ms} ms; stderr:\n${err}\nevents: ${JSON.stringify(events.slice(-5))}`));
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return { child, events, stderr: () => err, until, exited };
}
