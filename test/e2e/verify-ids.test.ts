import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { differences, runJsonLines, type JsonLinesRun as Run } from '../helpers/verify-run.js';
import { connect, withDovecot, type Account } from '../helpers/server.js';
import { EXIT } from '../../src/domain/errors.js';

/**
 * Verify pairs a copy's messages with the source's by the ids the copy recorded, before content
 * keys: a Maildir's U= in the name (under the uidValidity of the archive's state), an mbox's
 * offsets in its state, an IMAP target's APPENDUID answers in the state on this machine. Two
 * messages with the same headers and size but different bodies cannot be told apart by their
 * keys, and pairing them crosswise turns a flag change into two alterations (full depth) or hides
 * it (quick).
 */
const twin = (body: string): Buffer =>
  Buffer.from(`From: twin@example.org\r\nTo: alice@example.org\r\nSubject: the same headers\r\nMessage-ID: <twin@example.org>\r\nDate: Mon, 4 Dec 2023 10:00:00 +0000\r\n\r\n${body}\r\n`);
const date = new Date('2023-12-04T10:00:00Z');
const bob: Account = { name: 'ids-bob', password: 'ids-bob-pw' };
const dc = withDovecot({
  users: [bob],
  seed: [{ path: 'Twins', messages: [{ raw: twin('body A'), flags: ['\\Seen'], date }, { raw: twin('body B'), flags: ['\\Flagged'], date }] }],
});

describe('verify pairs by the ids the copy recorded', { skip: dc.skip }, () => {
  let root = '';
  const env = (): Record<string, string> => ({ ALICE_PW: dc.alice.password, BOB_PW: bob.password, XDG_STATE_HOME: join(root, 'state') });
  const alice = (): string[] => ['--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'ALICE_PW', '--include', 'Twins'];
  const run = (args: string[]): Promise<Run> => runJsonLines(args, env());
  /** Verify at both depths finds exactly the two swapped flag sets, each paired with `copyOf(id)`. */
  const twoFlagDifferences = async (to: string[], copyOf: (id: string) => string): Promise<void> => {
    for (const depth of [[], ['--quick']]) {
      const r = await run(['verify', '--json', ...alice(), ...to, ...depth]);
      assert.equal(r.status, EXIT.differences, `${r.stdout}\n${r.stderr}`);
      const found = differences(r);
      assert.deepEqual(found.map((d) => `${d['kind'] as string} ${d['id'] as string}`).sort(), ['flags 1', 'flags 2'], JSON.stringify(found));
      const byId = new Map(found.map((d) => [d['id'], d]));
      assert.equal(byId.get('1')?.['detail'], 'flags: source "\\Seen", copy "\\Flagged"');
      assert.equal(byId.get('2')?.['detail'], 'flags: source "\\Flagged", copy "\\Seen"');
      for (const d of found) assert.equal(d['copyId'], copyOf(String(d['id'])), JSON.stringify(d));
    }
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-verify-ids-'));
    const b = await run(['backup', '--json', ...alice(), '--to', `maildir:${join(root, 'md')}`]);
    assert.equal(b.status, 0, b.stderr);
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('twins (same headers and size, other bodies) with their flags swapped in the copy: two flag differences at both depths', async () => {
    const cur = join(root, 'md', '.Twins', 'cur');
    const names = (await readdir(cur)).sort();
    assert.equal(names.length, 2, names.join(' '));
    const seen = names.find((n) => n.endsWith(':2,S'));
    const flagged = names.find((n) => n.endsWith(':2,F'));
    assert.ok(seen !== undefined && flagged !== undefined, names.join(' '));
    await rename(join(cur, seen), join(cur, `${seen.slice(0, -1)}F`));
    await rename(join(cur, flagged), join(cur, `${flagged.slice(0, -1)}S`));
    // Each source message paired with its own copy: the file whose U= is its UID.
    const byUid = new Map(names.map((n) => [/,U=(\d+):2,/.exec(n)?.[1], n.split(/[,:]/)[0]]));
    await twoFlagDifferences(['--to', `maildir:${join(root, 'md')}`], (id) => String(byUid.get(id)));
  });

  test("W= is trusted only while S= is the file's size; names without W= (older archives) are read whole", async () => {
    const md = join(root, 'md2');
    const b = await run(['backup', '--json', ...alice(), '--to', `maildir:${md}`]);
    assert.equal(b.status, 0, b.stderr);
    const quick = (): Promise<Run> => run(['verify', '--json', '--quick', ...alice(), '--to', `maildir:${md}`]);
    assert.equal((await quick()).status, 0);
    const cur = join(md, '.Twins', 'cur');
    const first = (await readdir(cur)).find((n) => n.includes(',U=1:2,'));
    assert.ok(first !== undefined && /,W=\d+,/.test(first), first);
    const file = join(cur, first);
    const before = await readFile(file);
    const st = await stat(file);
    // Another program grew the body and kept the name (and the mtime): its S= and W= are stale.
    await appendFile(file, 'one more line\n');
    await utimes(file, st.atime, st.mtime);
    const grown = await quick();
    assert.equal(grown.status, EXIT.differences, grown.stdout);
    assert.deepEqual(differences(grown).map((d) => `${d['kind'] as string} ${d['id'] as string}`), ['altered 1'], grown.stdout);
    assert.match(String(differences(grown)[0]?.['detail']), /size \d+ in the source, \d+ in the copy/);
    // Back as it was, and every W= taken out of the names: measured from the files, still equal.
    await writeFile(file, before);
    await utimes(file, st.atime, st.mtime);
    for (const n of await readdir(cur)) await rename(join(cur, n), join(cur, n.replace(/,W=\d+/, '')));
    assert.ok((await readdir(cur)).every((n) => !n.includes(',W=')));
    const older = await quick();
    assert.equal(older.status, 0, older.stdout);
    assert.deepEqual(differences(older), []);
  });

  test('an mbox copy: the offsets its state records pair each message with its own copy', async () => {
    const dir = join(root, 'mbox');
    const b = await run(['backup', '--json', ...alice(), '--to', `mbox:${dir}`]);
    assert.equal(b.status, 0, b.stderr);
    const file = join(dir, 'Twins');
    const text = await readFile(file, 'latin1');
    const second = text.indexOf('\nFrom ') + 1;
    assert.ok(second > 0, text);
    // Swap the two messages' flag lines (the same length: offsets and the recorded end still hold).
    const seen = 'Status: RO\nX-Status: \n';
    const flagged = 'Status: O\nX-Status: F\n';
    assert.equal(text.indexOf(seen), text.lastIndexOf(seen), text);
    assert.ok(text.indexOf(seen) < second && text.indexOf(flagged) > second, text);
    await writeFile(file, text.replace(seen, '\0').replace(flagged, seen).replace('\0', flagged), 'latin1');
    await twoFlagDifferences(['--to', `mbox:${dir}`], (id) => (id === '1' ? '0' : String(second)));
  });

  test('an IMAP target: the APPENDUID answers its state records pair each message with its own copy', async () => {
    const to = ['--to', `imaps://${bob.name}@127.0.0.1:${dc.server.imapsPort}`, '--target-ca', dc.server.caFile, '--target-password-env', 'BOB_PW'];
    const m = await run(['migrate', '--json', ...alice(), ...to]);
    assert.equal(m.status, 0, m.stderr);
    const uids = new Map<string, number>();
    const c = await connect(dc.server, bob);
    try {
      await c.mailboxOpen('Twins');
      for await (const msg of c.fetch('1:*', { uid: true, flags: true })) uids.set([...(msg.flags ?? [])].filter((f) => f !== '\\Recent').sort().join(' '), msg.uid);
      const seen = uids.get('\\Seen');
      const flagged = uids.get('\\Flagged');
      assert.ok(seen !== undefined && flagged !== undefined, JSON.stringify([...uids]));
      await c.messageFlagsSet(String(seen), ['\\Flagged'], { uid: true });
      await c.messageFlagsSet(String(flagged), ['\\Seen'], { uid: true });
    } finally {
      await c.logout();
    }
    // Source UID 1 had \Seen, UID 2 \Flagged: each paired with the target UID its APPEND got.
    await twoFlagDifferences(to, (id) => String(uids.get(id === '1' ? '\\Seen' : '\\Flagged')));
  });
});
