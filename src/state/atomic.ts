import { rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { checkNotLink, openNoFollow, tempName } from './no-follow.js';

/** fsync a directory so that a rename or create inside it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await openNoFollow(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Write a file atomically: a temp file of a random name, created exclusively beside it (a link
 * planted there is never written through), fsync, rename over, fsync the directory. A link at
 * `path` itself is an error (no-follow.ts), not replaced.
 */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  await checkNotLink(path);
  const tmp = tempName(path);
  const fh = await openNoFollow(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e: unknown) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
  await fsyncDir(dirname(path));
}
