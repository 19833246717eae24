import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { differences, runJsonLines, type JsonLinesRun as Run } from '../helpers/verify-run.js';
import { withDovecot } from '../helpers/server.js';
import { EXIT } from '../../src/domain/errors.js';

/**
 * Verify pairs a Maildir copy's messages with the source's by the ids the copy recorded (U= in
 * the name, under the uidValidity of the archive's state), before content keys: two messages with
 * the same headers and size but different bodies cannot be told apart by their keys, and pairing
 * them crosswise turns a flag change into two alterations (full depth) or hides it (quick).
 */
const twin = (body: string): Buffer =>
  Buffer.from(`From: twin@example.org\r\nTo: alice@example.org\r\nSubject: the same headers\r\nMessage-ID: <twin@example.org>\r\nDate: Mon, 4 Dec 2023 10:00:00 +0000\r\n\r\n${body}\r\n`);
const date = new Date('2023-12-04T10:00:00Z');
const dc = withDovecot({
  seed: [{ path: 'Twins', messages: [{ raw: twin('body A'), flags: ['\\Seen'], date }, { raw: twin('body B'), flags: ['\\Flagged'], date }] }],
});

describe('verify pairs by the ids the copy recorded', { skip: dc.skip }, () => {
  let root = '';
  const env = (): Record<string, string> => ({ ALICE_PW: dc.alice.password, XDG_STATE_HOME: join(root, 'state') });
  const alice = (): string[] => ['--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'ALICE_PW', '--include', 'Twins'];
  const run = (args: string[]): Promise<Run> => runJsonLines(args, env());

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
    for (const depth of [[], ['--quick']]) {
      const r = await run(['verify', '--json', ...alice(), '--to', `maildir:${join(root, 'md')}`, ...depth]);
      assert.equal(r.status, EXIT.differences, `${r.stdout}\n${r.stderr}`);
      const found = differences(r);
      assert.deepEqual(found.map((d) => `${d['kind'] as string} ${d['id'] as string}`).sort(), ['flags 1', 'flags 2'], JSON.stringify(found));
      const byId = new Map(found.map((d) => [d['id'], d]));
      assert.equal(byId.get('1')?.['detail'], 'flags: source "\\Seen", copy "\\Flagged"');
      assert.equal(byId.get('2')?.['detail'], 'flags: source "\\Flagged", copy "\\Seen"');
      // Each source message paired with its own copy: the file whose U= is its UID.
      for (const d of found) {
        const file = (await readdir(cur)).find((n) => n.startsWith(String(d['copyId'])));
        assert.match(String(file), new RegExp(`,U=${String(d['id'])}:2,`), JSON.stringify(d));
      }
    }
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
});
