import { readFileSync } from 'node:fs';
import { link, lstat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { MailferryError, errnoCode, destinationError } from '../domain/errors.js';
import { openNoFollow, readNoFollow, tempName } from './no-follow.js';

/**
 * One run per archive: a lockfile holding "pid host start". It is written to a private temp file
 * first and then hard-linked into place (link fails if the lock exists), so a lock is never seen
 * empty, even when a run is killed while taking it. A second run exits at once with kind `locked`.
 * A lock left by a process on this host that is not running (gone, or a zombie: killed, not yet
 * reaped) is taken over (cron after a crash), and so is an unreadable one older than a minute
 * (written by something else, or damaged). The temp file has a random name and is created
 * exclusively, and a link at the lock's name is an error (state/no-follow.ts).
 */
const STALE_UNREADABLE_MS = 60_000;
export interface Lock {
  release(): Promise<void>;
}

export async function acquireLock(path: string): Promise<Lock> {
  for (let attempt = 0; attempt < 2; attempt++) {
    // A random name, created exclusively: a link planted at a guessable name is never written through.
    const tmp = tempName(path);
    try {
      const fh = await openNoFollow(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(`${process.pid} ${hostname()} ${new Date().toISOString()}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await link(tmp, path);
      } finally {
        await unlink(tmp).catch(() => undefined);
      }
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          await unlink(path).catch(() => undefined);
        },
      };
    } catch (e: unknown) {
      if (errnoCode(e) !== 'EEXIST') throw destinationError(e, `lock file ${path}`);
      const holder = await readNoFollow(path).then(
        (b) => b.toString('utf8'),
        (r: unknown) => {
          if (r instanceof MailferryError) throw r; // a link at the lock's name
          return '';
        },
      );
      const [pidText, host] = holder.trim().split(' ');
      const pid = Number(pidText);
      if (host === hostname() && Number.isInteger(pid) && pid > 0 && !alive(pid)) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      if (!(Number.isInteger(pid) && pid > 0)) {
        const age = Date.now() - ((await lstat(path).catch(() => null))?.mtimeMs ?? Date.now());
        if (age > STALE_UNREADABLE_MS) {
          await unlink(path).catch(() => undefined);
          continue;
        }
        throw new MailferryError('locked', `lock file ${path} is being created by another run, or is damaged; remove it if no run is active`);
      }
      throw new MailferryError(
        'locked',
        `another mailferry run (pid ${pidText ?? '?'} on ${host ?? '?'}) is using this archive; lock file ${path}`,
      );
    }
  }
  throw new MailferryError('locked', `could not take the lock ${path}`);
}

/**
 * Whether `pid` is a running process. A zombie (killed, not yet reaped by its parent: state Z in
 * /proc/PID/stat, or X while being reaped) still answers kill(pid, 0) but holds nothing: not running.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e: unknown) {
    if (errnoCode(e) !== 'EPERM') return false;
  }
  return !['Z', 'X'].includes(procState(pid) ?? '');
}

/** The state letter of /proc/PID/stat (after the command name, which may hold spaces and ')'). */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined; // no /proc (not Linux), or the process is gone meanwhile
  }
}
