/**
 * `node dist/scripts/bench/disk-floor.js --from MAILDIR --to MAILDIR [--writers N] [--batch N]`
 *
 * The benchmark's disk reference: what it costs this machine just to write an archive's messages
 * with the durability mailferry and mbsync give them, with no network, no IMAP and no parsing.
 * Copies every message file of the Maildir++ tree `--from` (a finished backup) into `--to`, the
 * Maildir way: each file written to tmp/, fsync'd, renamed into cur/ or new/, and the directory
 * fsync'd once per `--batch` renames (default 100, as a mailferry batch). `--writers` files are
 * in flight at once (default 4). Reading comes from the page cache (the backup was just written).
 * Prints one JSON line: {"messages": N, "bytes": B}.
 */
import { mkdir, open, readdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fsyncDir } from '../../src/state/atomic.js';

const { values } = parseArgs({
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
    writers: { type: 'string', default: '4' },
    batch: { type: 'string', default: '100' },
  },
});
if (values.from === undefined || values.to === undefined) throw new Error('disk-floor: --from and --to are required');
const from = path.resolve(values.from);
const to = path.resolve(values.to);
const writers = Number(values.writers);
const batch = Number(values.batch);

interface Job {
  folder: string;
  sub: 'cur' | 'new';
  name: string;
}

/** Folder directories of a Maildir++ tree: the root (INBOX) and every `.A.B` beside it. */
async function folders(root: string): Promise<string[]> {
  const out = [''];
  for (const e of await readdir(root, { withFileTypes: true })) if (e.isDirectory() && e.name.startsWith('.')) out.push(e.name);
  return out;
}

const jobs: Job[] = [];
for (const folder of await folders(from)) {
  for (const sub of ['cur', 'new'] as const) {
    await mkdir(path.join(to, folder, sub), { recursive: true, mode: 0o700 });
    await mkdir(path.join(to, folder, 'tmp'), { recursive: true, mode: 0o700 });
    for (const name of await readdir(path.join(from, folder, sub))) jobs.push({ folder, sub, name });
  }
}

let next = 0;
let bytes = 0;
/** Renames since the last directory fsync, per destination directory. */
const unsynced = new Map<string, number>();

async function copy(job: Job): Promise<void> {
  const body = await readFile(path.join(from, job.folder, job.sub, job.name));
  const tmp = path.join(to, job.folder, 'tmp', job.name);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(body);
    await fh.sync();
  } finally {
    await fh.close();
  }
  const dir = path.join(to, job.folder, job.sub);
  await rename(tmp, path.join(dir, job.name));
  bytes += body.length;
  const n = (unsynced.get(dir) ?? 0) + 1;
  unsynced.set(dir, n);
  if (n >= batch) {
    unsynced.set(dir, 0);
    await fsyncDir(dir);
  }
}

await Promise.all(
  Array.from({ length: writers }, async () => {
    while (next < jobs.length) await copy(jobs[next++] as Job);
  }),
);
for (const [dir, n] of unsynced) if (n > 0) await fsyncDir(dir);
process.stdout.write(`${JSON.stringify({ messages: jobs.length, bytes })}\n`);
