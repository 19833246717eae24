import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArchiveEncoder } from '../../src/formats/encoder.js';
import { fromLine, metadataHeaders } from '../../src/formats/mbox.js';
import { runCli } from '../helpers/cli.js';
import { peakRss } from '../helpers/peak-rss.js';
import { fetchAll, withDovecot, type Account } from '../helpers/server.js';

/**
 * An mbox archive holding a 30 MB message restores with memory bounded by bytes (the mbox source
 * streams a message over the stream threshold from the file, un-quoting on the way: issue 16),
 * and byte-exact: its `From ` and `>From ` lines, quoted in the archive, come back as they were.
 */
const target: Account = { name: 'mbox-memory', password: 'mbox-memory-pw' };
const dc = withDovecot({ users: [target] });

/** A message of about `mb` MB in wire form, with lines mboxrd must quote everywhere in it. */
function bigMessage(mb: number): Buffer {
  const head = 'From: a@example.org\r\nTo: b@example.org\r\nSubject: big mbox message\r\nMessage-ID: <big-mbox@example.org>\r\nDate: Wed, 02 Nov 2026 06:36:00 +0000\r\n\r\n';
  const lines: string[] = [];
  let n = head.length;
  for (let i = 0; n < mb * 1024 * 1024; i++) {
    const l = i % 97 === 0 ? `From line ${i}\r\n` : i % 89 === 0 ? `${'>'.repeat(1 + (i % 3))}From quoted ${i}\r\n` : `${String(i).padStart(8, '0')} ${'x'.repeat(66)}\r\n`;
    lines.push(l);
    n += l.length;
  }
  return Buffer.from(head + lines.join(''), 'latin1');
}

describe('mbox source memory', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-mbox-memory-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('restore of an mbox archive holding a 30 MB message: peak RSS below 150 MiB, byte-exact', async () => {
    const small = Buffer.from('Subject: small\r\nMessage-ID: <small@example.org>\r\n\r\nFrom here\r\n>From there\r\n', 'latin1');
    const big = bigMessage(30);
    const archive = join(root, 'mbox');
    await mkdir(archive, { recursive: true });
    const date = new Date(Date.UTC(2026, 10, 2, 6, 36, 0));
    const framed = (m: Buffer): Buffer[] => [Buffer.from(fromLine(date) + metadataHeaders(new Set(['\\Seen']))), ...ArchiveEncoder.encode(m, true).parts, Buffer.from('\n')];
    await writeFile(join(archive, 'INBOX'), Buffer.concat([...framed(small), ...framed(big), ...framed(small)]));
    const rss = peakRss();
    const r = await runCli(
      ['restore', '--json', '--from', `mbox:${archive}`, '--to', `imaps://${target.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'PW'],
      { PW: target.password, XDG_STATE_HOME: join(root, 'state') },
      { timeoutMs: 180_000, onSpawn: rss.watch },
    );
    const peak = rss.stop();
    process.stderr.write(`peak RSS restoring an mbox archive with a 30 MB message: ${peak.toFixed(1)} MiB\n`);
    assert.equal(r.status, 0, r.stderr);
    const got = await fetchAll(dc.server, target, 'INBOX');
    assert.equal(got.length, 3);
    // In any order (batches run in parallel): the two small ones, then the big one, by size.
    const raw = got.map((m) => m.raw).sort((x, y) => x.length - y.length);
    assert.deepEqual([raw[0]?.toString('latin1'), raw[1]?.toString('latin1')], [small.toString('latin1'), small.toString('latin1')], 'the small messages byte-exact');
    assert.ok(raw[2]?.equals(big), `the 30 MB message byte-exact (${raw[2]?.length} bytes, ${big.length} sent)`);
    assert.ok(peak > 0 && peak < 150, `peak RSS ${peak.toFixed(1)} MiB`);
  });
});
