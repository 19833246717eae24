/**
 * A long-running CLI (`mailferry … --watch --json`) as a child process whose stdout JSON lines are
 * read as they come, so a test can wait for an event (`until`), act (deliver mail, kick sessions,
 * restart Dovecot, send a signal) and wait again. Lines that are not JSON are kept in `text`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DovecotServer } from '../../scripts/dev/dovecot.js';
import { CLI_BIN, REPO_ROOT } from './cli.js';
import { connect, type Account } from './server.js';

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

export function startWatch(args: string[], env: Record<string, string> = {}, prefix: readonly string[] = []): Watching {
  // `prefix`: run node through this command, e.g. `['bash', '-c', 'ulimit -f 100; exec "$0" "$@"']`.
  const [cmd, ...pre] = [...prefix, process.execPath];
  const child = spawn(cmd as string, [...pre, CLI_BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

let serial = 0;
/** A new message with a Message-ID of its own, APPENDed by another client (as a delivery would); `pad` bytes of body. */
export async function deliverTo(server: DovecotServer, user: Account, folder = 'INBOX', pad = 0): Promise<string> {
  const n = ++serial;
  const id = `<watch-${process.pid}-${n}@watch.test>`;
  const c = await connect(server, user);
  try {
    const body = `body ${n}\r\n${'0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n'.repeat(Math.ceil(pad / 66))}`;
    await c.append(folder, Buffer.from(`From: a@example.org\r\nTo: b@example.org\r\nSubject: watch ${n}\r\nMessage-ID: ${id}\r\n\r\n${body}`));
  } finally {
    await c.logout();
  }
  return id;
}

/**
 * A burst of `count` messages of about `pad` bytes that arrives in `folder` at once: appended to a
 * staging folder first, then moved in one UID MOVE, so the watcher sees them in one EXISTS however
 * slow each APPEND is (appending them one by one races a fast copier).
 */
export async function deliverBurst(server: DovecotServer, user: Account, count: number, pad: number, folder = 'INBOX'): Promise<string[]> {
  const c = await connect(server, user);
  const staging = `Staging-${process.pid}-${++serial}`;
  const ids: string[] = [];
  try {
    await c.mailboxCreate(staging);
    for (let i = 0; i < count; i++) {
      const n = ++serial;
      const id = `<watch-${process.pid}-${n}@watch.test>`;
      const body = `body ${n}\r\n${'0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n'.repeat(Math.ceil(pad / 66))}`;
      await c.append(staging, Buffer.from(`From: a@example.org\r\nTo: b@example.org\r\nSubject: watch ${n}\r\nMessage-ID: ${id}\r\n\r\n${body}`));
      ids.push(id);
    }
    await c.mailboxOpen(staging);
    const moved = await c.messageMove('1:*', folder);
    if (moved === false) throw new Error(`the burst was not moved into ${folder}`);
    await c.mailboxClose();
    await c.mailboxDelete(staging);
  } finally {
    await c.logout();
  }
  return ids;
}

/** Message-IDs of every message in a Maildir folder (cur/ and new/), sorted, duplicates kept. */
export async function archivedIds(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['cur', 'new']) {
    for (const f of await readdir(join(dir, sub)).catch(() => [] as string[])) {
      const m = /^Message-ID: (.+)$/im.exec(await readFile(join(dir, sub, f), 'utf8'));
      out.push(m?.[1]?.trim() ?? `(none: ${f})`);
    }
  }
  return out.sort();
}

/** Message-IDs of every message in a server folder, sorted. */
export async function serverIds(server: DovecotServer, user: Account, folder: string): Promise<string[]> {
  const c = await connect(server, user);
  try {
    const box = await c.mailboxOpen(folder, { readOnly: true });
    const out: string[] = [];
    if (box.exists > 0) for await (const m of c.fetch('1:*', { envelope: true })) out.push(m.envelope?.messageId ?? '(none)');
    return out.sort();
  } finally {
    await c.logout();
  }
}

/** `backup --json --watch` of `user` (plain IMAP on loopback, a password file in `dir`) into `maildir:archive`. */
export async function watchBackupArgs(server: DovecotServer, user: Account, dir: string, archive: string, extra: string[] = []): Promise<string[]> {
  const pw = join(dir, `pw-${user.name}`);
  await writeFile(pw, `${user.password}\n`, { mode: 0o600 });
  return ['backup', '--from', `imap://${user.name}@127.0.0.1:${server.imapPort}`, '--tls-mode', 'plain', '--password-file', pw, '--to', `maildir:${archive}`, '--json', '--watch', ...extra];
}

/**
 * Signal a watch between passes, where it ends with 0: once a heartbeat that says the watch waits
 * comes after this call (run it with a short `--watch-heartbeat`), or with `after: 'pass'`, at the
 * next pass event (a polled source then sleeps `--watch-interval`).
 */
export async function stopBetweenPasses(
  w: Watching,
  after: 'heartbeat' | 'pass' = 'heartbeat',
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<{ status: number | null; signal: NodeJS.Signals | null; at: number; sent: number }> {
  let sent = Date.now();
  if (w.child.exitCode === null && w.child.signalCode === null) {
    await w.until((e) => e['type'] === after && (after === 'pass' || e['waiting'] === true), 20_000, w.events.length).catch(() => undefined);
    sent = Date.now();
    w.child.kill(signal);
  }
  return { ...(await w.exited), sent };
}

/**
 * A watch (backup of `user` into `archive`, INBOX only) in the middle of copying a burst: 30 x 200
 * KB arriving at once, copied at 2 MB/s in 1 MiB batches (5 messages, each batch committed before
 * its message events), about 3 s of copying; resolves after the first batch is archived. (Delivered
 * one by one, or in one 16 MiB batch, a fast machine had archived all of them by then.) `rerun`
 * is the same backup without --watch and the throttle.
 */
export async function midBurst(server: DovecotServer, user: Account, dir: string, archive: string): Promise<{ w: Watching; rerun: string[] }> {
  await deliverTo(server, user);
  const args = await watchBackupArgs(server, user, dir, archive, ['--max-bytes-per-second', '2M', '--batch-mb', '1', '--include', 'INBOX']);
  const w = startWatch(args);
  await w.until((e) => e['type'] === 'pass' && e['full'] === true);
  const from = w.events.length;
  await deliverBurst(server, user, 30, 200_000);
  await w.until((e) => e['type'] === 'message', 20_000, from);
  return { w, rerun: args.filter((a) => a !== '--watch' && a !== '--max-bytes-per-second' && a !== '2M') };
}
