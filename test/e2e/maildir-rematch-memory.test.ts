import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATE_FILE } from '../../src/state/files.js';
import { runCliJson, type JsonResult } from '../helpers/cli.js';
import { peakRss } from '../helpers/peak-rss.js';
import { withDovecot } from '../helpers/server.js';

/**
 * A rerun after a crash that left a Maildir folder half re-matched (the state says `rematching`,
 * as a kill -9 inside rebase leaves it) reads every file of the folder for its content key. With
 * a 30 MB message there, it stays near a normal rerun's peak RSS: the key is streamed
 * (drivers/maildir/file-key.ts), only the header block read when the name's W= is trusted.
 */
const date = new Date('2024-03-01T10:00:00Z');
function big(mb: number): Buffer {
  const head = 'From: a@example.org\r\nSubject: big\r\nMessage-ID: <big-rematch@example.org>\r\n\r\n';
  const line = `${'x'.repeat(76)}\r\n`;
  return Buffer.from(head + line.repeat(Math.ceil((mb * 1024 * 1024) / line.length)), 'latin1');
}
const small = (i: number): Buffer => Buffer.from(`From: a@example.org\r\nSubject: small ${i}\r\nMessage-ID: <small-${i}@example.org>\r\n\r\nbody ${i}\r\n`);
const dc = withDovecot({ seed: [{ path: 'Big', messages: [small(1), big(30), small(2)].map((raw) => ({ raw, flags: ['\\Seen'], date })) }] });

describe('Maildir re-match memory', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-rematch-memory-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  const md = (): string => join(root, 'md');
  const backup = async (): Promise<{ r: JsonResult; peak: number }> => {
    const rss = peakRss();
    const r = await runCliJson(
      ['backup', '--json', '--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'PW', '--include', 'Big', '--to', `maildir:${md()}`],
      { PW: dc.alice.password, XDG_STATE_HOME: join(root, 'state') },
      { timeoutMs: 180_000, onSpawn: rss.watch },
    );
    return { r, peak: rss.stop() };
  };
  /** What a kill -9 inside rebase leaves: the folder's record marked `rematching`. */
  const crashedInRebase = async (): Promise<void> => {
    const file = join(md(), STATE_FILE);
    const state = JSON.parse(await readFile(file, 'utf8')) as { folders: Record<string, { rematching?: boolean }> };
    const folder = state.folders['Big'];
    assert.ok(folder !== undefined, JSON.stringify(state));
    folder.rematching = true;
    await writeFile(file, JSON.stringify(state));
  };

  test('a rerun re-matching a folder with a 30 MB message peaks near a normal rerun', async () => {
    const first = await backup();
    assert.equal(first.r.status, 0, first.r.stderr);
    assert.equal(first.r.out['messages'], 3);
    const normal = await backup();
    assert.equal(normal.r.status, 0, normal.r.stderr);
    assert.equal(normal.r.out['messages'], 0);

    await crashedInRebase();
    const withW = await backup();
    assert.equal(withW.r.status, 0, withW.r.stderr);
    assert.equal(withW.r.out['messages'], 0, 'every file matched again, nothing copied twice');

    // Names without W= (an older archive, another writer): each file is read through once.
    const cur = join(md(), '.Big', 'cur');
    for (const n of await readdir(cur)) await rename(join(cur, n), join(cur, n.replace(/,W=\d+/, '')));
    await crashedInRebase();
    const withoutW = await backup();
    assert.equal(withoutW.r.status, 0, withoutW.r.stderr);
    assert.equal(withoutW.r.out['messages'], 0, 'every file matched again, nothing copied twice');
    assert.equal((await readdir(cur)).filter((n) => /,U=\d+:2,/.test(n)).length, 3);

    process.stderr.write(
      `peak RSS (VmHWM), 30 MB message in the folder: first backup ${first.peak.toFixed(1)} MiB, normal rerun ${normal.peak.toFixed(1)} MiB, ` +
        `re-match rerun ${withW.peak.toFixed(1)} MiB (W= names), ${withoutW.peak.toFixed(1)} MiB (no W=)\n`,
    );
    for (const p of [withW.peak, withoutW.peak]) assert.ok(p > 0 && p < normal.peak + 12, `re-match peak ${p.toFixed(1)} MiB, normal rerun ${normal.peak.toFixed(1)} MiB`);
  });
});
