import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Case folded and NFC, as macOS and Windows file systems compare names. */
export const foldName = (name: string): string => name.toUpperCase().toLowerCase().normalize('NFC');

/** Names in one directory (recursively) that a case-insensitive, normalising file system would merge. */
export async function foldClashes(dir: string): Promise<string[]> {
  const clashes: string[] = [];
  const seen = new Map<string, string>();
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const prev = seen.get(foldName(e.name));
    if (prev !== undefined) clashes.push(`${join(dir, prev)} ~ ${e.name}`);
    seen.set(foldName(e.name), e.name);
    if (e.isDirectory()) clashes.push(...(await foldClashes(join(dir, e.name))));
  }
  return clashes;
}
