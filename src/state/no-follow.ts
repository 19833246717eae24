import { randomBytes } from 'node:crypto';
import { constants, openSync } from 'node:fs';
import { lstat, mkdir, open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { MailferryError, errnoCode } from '../domain/errors.js';

/**
 * The archive directory is ours: a symbolic link found in it is never followed, whoever planted
 * it (a server cannot, but another local user or an older tool can), since following it would
 * write, truncate or read a file outside the archive. Every open in the archive and the state goes
 * through `openNoFollow` (O_NOFOLLOW: the last component is never a link), directories below the
 * archive root are checked with lstat (`checkNoLinks`) before files are put in them, and
 * temporary files get random names and exclusive creation (`tempName`, 'wx'), so a link planted at
 * a predictable name is never written through. A link is a `destination` error naming it (exit 6).
 * The archive root itself is the user's choice and may be a link.
 */
export function linkError(path: string): MailferryError {
  return new MailferryError('destination', `${path} is a symbolic link; mailferry never follows links in an archive: remove it`);
}

const FLAGS = {
  r: constants.O_RDONLY,
  'r+': constants.O_RDWR,
  a: constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT,
  'a+': constants.O_RDWR | constants.O_APPEND | constants.O_CREAT,
  w: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC,
  wx: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
} as const;
export type OpenMode = keyof typeof FLAGS;

/** ELOOP from an O_NOFOLLOW open means the last component is a link. */
function mapLink(e: unknown, path: string): unknown {
  return errnoCode(e) === 'ELOOP' ? linkError(path) : e;
}

export async function openNoFollow(path: string, mode: OpenMode, perm = 0o600): Promise<FileHandle> {
  try {
    return await open(path, FLAGS[mode] | constants.O_NOFOLLOW, perm);
  } catch (e: unknown) {
    throw mapLink(e, path);
  }
}

export function openNoFollowSync(path: string, mode: OpenMode, perm = 0o600): number {
  try {
    return openSync(path, FLAGS[mode] | constants.O_NOFOLLOW, perm);
  } catch (e: unknown) {
    throw mapLink(e, path);
  }
}

/** A whole file, read without following a link. */
export async function readNoFollow(path: string): Promise<Buffer> {
  const fh = await openNoFollow(path, 'r');
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** Throws linkError when `path` is a link; a missing path is fine. */
export async function checkNotLink(path: string): Promise<void> {
  try {
    if ((await lstat(path)).isSymbolicLink()) throw linkError(path);
  } catch (e: unknown) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
}

/** Every component of `path` below `root` (root excluded, `path` included) is not a link. */
export async function checkNoLinks(root: string, path: string): Promise<void> {
  const rel = relative(root, path);
  if (rel === '' || rel.startsWith('..')) return;
  let at = root;
  for (const part of rel.split(sep)) {
    at = join(at, part);
    await checkNotLink(at);
  }
}

/** A temporary name beside `path` that nobody can guess: `.<name>.<random>.tmp`. */
export function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
}

/** mkdir -p of `dir` below `root`, never through a link, before or after (a link found is an error). */
export async function mkdirNoFollow(root: string, dir: string): Promise<void> {
  await checkNoLinks(root, dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await checkNoLinks(root, dir);
}
