import assert from 'node:assert/strict';
import type { DovecotServer } from '../../scripts/dev/dovecot.js';
import { connect, fetchAll, type Account, type FetchedMessage } from './server.js';

/** Comparing two IMAP accounts on the test Dovecot: folders, message bytes, flags, dates. */
export const sysFlags = (f: Set<string>): Set<string> => new Set([...f].filter((x) => x !== '\\Recent'));
export const sec = (d: Date | undefined): number => Math.floor((d?.getTime() ?? NaN) / 1000);

export async function selectableFolders(server: DovecotServer, user: Account): Promise<string[]> {
  const c = await connect(server, user);
  try {
    return (await c.list())
      .filter((l) => !l.flags.has('\\Noselect') && !l.flags.has('\\NonExistent'))
      .map((l) => l.path)
      .sort();
  } finally {
    await c.logout();
  }
}

/** The same messages (as a multiset by raw bytes), flags without \Recent, INTERNALDATE to the second. */
export function assertSameFolder(where: string, want: FetchedMessage[], got: FetchedMessage[]): void {
  assert.equal(got.length, want.length, `${where}: message count`);
  const left = [...got];
  for (const m of want) {
    const i = left.findIndex((g) => g.raw.equals(m.raw) && sec(g.internalDate) === sec(m.internalDate));
    assert.notEqual(i, -1, `${where}: UID ${m.uid} missing (bytes or date differ)`);
    const g = left.splice(i, 1)[0] as FetchedMessage;
    assert.deepEqual(sysFlags(g.flags), sysFlags(m.flags), `${where}: UID ${m.uid} flags`);
  }
}

/** `user` holds exactly what `original` holds, folder by folder. */
export async function assertSameAccount(server: DovecotServer, original: Account, user: Account, folders: readonly string[]): Promise<void> {
  assert.deepEqual(await selectableFolders(server, user), await selectableFolders(server, original));
  for (const path of folders) {
    assertSameFolder(`${user.name} ${path}`, await fetchAll(server, original, path), await fetchAll(server, user, path));
  }
}

export async function messageCount(server: DovecotServer, user: Account): Promise<number> {
  let n = 0;
  for (const path of await selectableFolders(server, user)) n += (await fetchAll(server, user, path)).length;
  return n;
}
