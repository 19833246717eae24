import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { lfToCrlf, MboxWireStream, Unquoter } from '../../src/formats/encoder.js';
import { headerBlock, wireSizeOfLf } from '../../src/formats/fingerprint.js';
import { MboxScanner, readMbox, type MboxEntry, type MboxSpan } from '../../src/formats/mbox-reader.js';

/** The reference, line by line on the whole input: /^>+From / loses one ">". */
function unquoteWhole(b: Buffer): Buffer {
  return Buffer.from(
    b
      .toString('latin1')
      .split('\n')
      .map((l) => (/^>+From /.test(l) ? l.slice(1) : l))
      .join('\n'),
    'latin1',
  );
}

function unquoteChunks(chunks: readonly Buffer[]): Buffer {
  const u = new Unquoter();
  return Buffer.concat([...chunks.flatMap((c) => u.push(c)), ...u.end()]);
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

test('un-quoting across chunk boundaries: ">From " cut in two, a line start at a chunk start, a chunk start inside a line', () => {
  // ">From " split over two chunks: the ">" must still go.
  assert.equal(unquoteChunks([b('a\n>Fr'), b('om x\n')]).toString('latin1'), 'a\nFrom x\n');
  assert.equal(unquoteChunks([b('a\n>'), b('>From x\n')]).toString('latin1'), 'a\n>From x\n');
  assert.equal(unquoteChunks([b('a\n>>From'), b(' x\n')]).toString('latin1'), 'a\n>From x\n');
  // The "\n" ends one chunk, the quoted line starts the next: still a line start.
  assert.equal(unquoteChunks([b('a\n'), b('>From x\n')]).toString('latin1'), 'a\nFrom x\n');
  // A chunk that starts inside a line is not a line start.
  assert.equal(unquoteChunks([b('a'), b('>From x\n')]).toString('latin1'), 'a>From x\n');
  // Not quoted after all: what was held comes back in order.
  assert.equal(unquoteChunks([b('>Fro'), b('g\n')]).toString('latin1'), '>Frog\n');
  assert.equal(unquoteChunks([b('>>Fr')]).toString('latin1'), '>>Fr');
  assert.equal(unquoteChunks([b('>'), b('>'), b('x')]).toString('latin1'), '>>x');
});

const sample = b(
  '>From a\n>>From b\nFrom c\n>Fro\n>Frog\n>>>\n>From\n>From \nx>From y\n\n>From at\r\n\r\n>From cr\rlone\n' + '>'.repeat(40) + 'From deep\n>From last',
);

test('Unquoter and MboxWireStream equal the whole-input reference at every cut', async () => {
  const want = unquoteWhole(sample);
  for (let size = 1; size <= 9; size++) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < sample.length; i += size) chunks.push(sample.subarray(i, i + size));
    assert.deepEqual(unquoteChunks(chunks), want, `chunks of ${size}`);
    const wire: Buffer[] = [];
    for await (const c of Readable.from(chunks, { objectMode: false }).pipe(new MboxWireStream())) wire.push(c as Buffer);
    assert.deepEqual(Buffer.concat(wire), lfToCrlf(want), `wire, chunks of ${size}`);
  }
  for (let cut = 0; cut <= sample.length; cut++) assert.deepEqual(unquoteChunks([sample.subarray(0, cut), sample.subarray(cut)]), want, `cut at ${cut}`);
});

/** An mbox file of our framing and others', with the traps: quoted lines, CRLF, no final newline, no blank line. */
const file = b(
  [
    'junk before the first From_\n',
    'From MAILER-DAEMON Wed Nov  2 06:36:00 2026\nStatus: RO\nX-Status: AF\nX-Keywords: $Work x\nSubject: one\n\n>From inside\nbody\n\n',
    'From MAILER-DAEMON Wed Nov  2 06:36:01 2026\nStatus: O\nX-Status: \nX-Keywords: \nX-Gmail-Labels: Inbox,Starred\nSubject: labelled\r\n\r\nno eol\n\n',
    'From someone Thu Nov  3 01:02:03 2026\nSubject: foreign\nStatus: RO\n\nbody\n\n',
    'From MAILER-DAEMON Wed Nov  2 06:36:02 2026\nStatus: O\nX-Status: \nX-Keywords: \nno blank line at all\n>>From x\n\n',
    'From MAILER-DAEMON Wed Nov  2 06:36:03 2026\nStatus: O\nX-Status: \nX-Keywords: \n\n\n\n',
    'From MAILER-DAEMON Wed Nov  2 06:36:04 2026\nStatus: O\n',
    'From MAILER-DAEMON Wed Nov  2 06:36:05 2026\nStatus: O\nX-Status: \nX-Keywords: \na: b\n\nlast, cut\nFrom no newline',
  ].join(''),
);

test('MboxScanner gives readMbox\'s messages, at every chunk size, without holding them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-scan-'));
  try {
    const path = join(dir, 'box');
    await writeFile(path, file);
    const noEol = new Set([file.indexOf('From MAILER-DAEMON Wed Nov  2 06:36:01')]);
    for (const labelled of [false, true]) {
      const want: MboxEntry[] = [];
      for await (const e of readMbox(path, noEol, 0, undefined, labelled)) want.push(e);
      assert.equal(want.length, 7);
      for (const size of [1, 2, 3, 5, 7, 64, file.length]) {
        const s = new MboxScanner(noEol, labelled);
        const spans: MboxSpan[] = [];
        for (let i = 0; i < file.length; i += size) spans.push(...s.push(file.subarray(i, i + size)));
        spans.push(...s.finish());
        assert.equal(spans.length, want.length, `chunks of ${size}`);
        spans.forEach((sp, n) => {
          const e = want[n];
          assert.ok(e !== undefined);
          const what = `message ${n}, chunks of ${size}, labelled ${labelled}`;
          assert.equal(sp.offset, e.offset, what);
          assert.equal(sp.fromLine, e.fromLine, what);
          assert.deepEqual([...sp.flags].sort(), [...e.flags].sort(), what);
          assert.deepEqual(unquoteWhole(file.subarray(sp.start, sp.end)), e.body, what);
          assert.equal(sp.size, wireSizeOfLf(e.body), what);
          assert.deepEqual(unquoteWhole(file.subarray(sp.start, sp.headerEnd)), headerBlock(e.body), what);
        });
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
