import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { spoolLiteral } from '../../src/drivers/imap/literal.js';
import { withTmpdir } from '../helpers/tmpdir.js';

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of chunks) out.push(c);
  return Buffer.concat(out);
}

test('a spooled message leaves no name on disk while it is used, reads back whole as often as asked, and is gone after remove()', async () => {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mf-literal-'));
  try {
    await withTmpdir(tmp, async () => {
      const line = 'y'.repeat(70) + '\n';
      const lf = Buffer.from(`Subject: spool\n\n${line.repeat(20_000)}`, 'latin1'); // ~1.4 MB, several read chunks
      const parts: Buffer[] = [];
      for (let i = 0; i < lf.length; i += 40_001) parts.push(lf.subarray(i, i + 40_001));
      const spooled = await spoolLiteral(Readable.from(parts), lf.length * 2, 'test');
      assert.deepEqual(await readdir(tmp), [], 'nothing named under TMPDIR: a crash now leaves nothing behind');
      const wire = Buffer.from(lf.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
      assert.equal(spooled.size, wire.length);
      assert.ok((await collect(spooled.chunks())).equals(wire), 'first read: the CRLF form');
      assert.ok((await collect(spooled.chunks())).equals(wire), 'second read (a resent group): the same bytes');
      assert.ok(spooled.head.equals(wire.subarray(0, spooled.head.length)));
      await spooled.remove();
      await assert.rejects(async () => collect(spooled.chunks()), 'the handle is closed after remove()');
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test('a spooled stream longer than its limit is a message error and leaves nothing behind', async () => {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mf-literal-'));
  try {
    await withTmpdir(tmp, async () => {
      await assert.rejects(spoolLiteral(Readable.from([Buffer.alloc(50_000, 0x61)]), 1_000, 'liar'), (e: unknown) => e instanceof Error && /liar/.test(e.message));
      assert.deepEqual(await readdir(tmp), []);
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});
