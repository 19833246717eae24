import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArchiveEncoder, lfToCrlf, unquoteMboxrd } from '../../src/formats/encoder.js';

function encodeInChunks(input: Buffer, quote: boolean, size: number): Buffer {
  const enc = new ArchiveEncoder(quote);
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += size) out.push(...enc.push(input.subarray(i, i + size)));
  out.push(...enc.end());
  return Buffer.concat(out);
}

const sample = Buffer.from(
  'From: a\r\nSubject: x\r\n\r\nFrom here\r\n>From there\r\n>>From x\r\nFromage\r\n.\r\n..dots\r\nbare\nlf\r\nlone\rcr\r\n>Fro\r\nlast line without newline',
  'latin1',
);

test('CRLF becomes LF, bare LF and lone CR stay', () => {
  const out = Buffer.concat(ArchiveEncoder.encode(sample, false).parts).toString('latin1');
  assert.equal(out.includes('\r\n'), false);
  assert.ok(out.includes('bare\nlf\n'));
  assert.ok(out.includes('lone\rcr\n'));
  assert.ok(out.endsWith('without newline'));
});

test('mboxrd quoting adds one > to every /^>*From / line and nothing else', () => {
  const out = Buffer.concat(ArchiveEncoder.encode(sample, true).parts).toString('latin1');
  assert.ok(out.includes('\n>From here\n'));
  assert.ok(out.includes('\n>>From there\n'));
  assert.ok(out.includes('\n>>>From x\n'));
  assert.ok(out.includes('\nFromage\n'));
  assert.ok(out.includes('\n>Fro\n'));
  assert.ok(out.startsWith('From: a\n'), 'header "From:" is not a From_ line');
});

test('a message starting with "From " is quoted too', () => {
  const out = Buffer.concat(ArchiveEncoder.encode(Buffer.from('From x\r\n'), true).parts).toString();
  assert.equal(out, '>From x\n');
});

test('chunk boundaries anywhere give the same bytes (every chunk size 1..17)', () => {
  for (const quote of [false, true]) {
    const whole = Buffer.concat(ArchiveEncoder.encode(sample, quote).parts);
    for (let size = 1; size <= 17; size++) {
      assert.deepEqual(encodeInChunks(sample, quote, size), whole, `quote=${quote} size=${size}`);
    }
  }
});

test('unquote and LF->CRLF restore the wire bytes', () => {
  const crlfOnly = Buffer.from(sample.toString('latin1').replace(/\r?\n/g, '\r\n').replace(/\r(?!\n)/g, ''), 'latin1');
  const quoted = Buffer.concat(ArchiveEncoder.encode(crlfOnly, true).parts);
  assert.deepEqual(lfToCrlf(unquoteMboxrd(quoted)), crlfOnly);
});

test('byte counters match the output', () => {
  const enc = ArchiveEncoder.encode(sample, true);
  assert.equal(enc.bytes, Buffer.concat(enc.parts).length);
  assert.equal(enc.endsWithLf, false);
  assert.equal(ArchiveEncoder.encode(Buffer.from('a\r\n'), false).endsWithLf, true);
});

test('NUL and 8-bit bytes pass unchanged', () => {
  const raw = Buffer.from([0x41, 0x00, 0xff, 0xe9, 0x0d, 0x0a, 0x00]);
  assert.deepEqual(Buffer.concat(ArchiveEncoder.encode(raw, true).parts), Buffer.from([0x41, 0x00, 0xff, 0xe9, 0x0a, 0x00]));
});

test('LF->CRLF: wire-form input comes back as the same buffer; cut anywhere, chunks give the whole conversion', () => {
  const wire = Buffer.from('Subject: x\r\n\r\nline\r\n\rlone CR\r\n', 'latin1');
  assert.equal(lfToCrlf(wire), wire, 'no bare LF: not copied');
  const mixed = Buffer.from('a\nb\r\n\nc\r\rd\n\n\r\ne', 'latin1');
  const whole = lfToCrlf(mixed);
  assert.equal(whole.toString('latin1'), 'a\r\nb\r\n\r\nc\r\rd\r\n\r\n\r\ne');
  for (let size = 1; size <= 7; size++) {
    const out: Buffer[] = [];
    let afterCr = false;
    for (let i = 0; i < mixed.length; i += size) {
      const chunk = mixed.subarray(i, i + size);
      out.push(lfToCrlf(chunk, afterCr));
      afterCr = chunk[chunk.length - 1] === 0x0d;
    }
    assert.deepEqual(Buffer.concat(out), whole, `chunks of ${size}`);
  }
});

test('CRLF -> LF matches a byte-by-byte reference on random CR/LF-heavy input, in any chunking', () => {
  let seed = 7;
  const next = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const alphabet = [0x0d, 0x0a, 0x0d, 0x41, 0x2e, 0x00];
  for (let round = 0; round < 200; round++) {
    const input = Buffer.from(Array.from({ length: 1 + (next() % 300) }, () => alphabet[next() % alphabet.length] as number));
    const want: number[] = [];
    for (let i = 0; i < input.length; i++) if (!(input[i] === 0x0d && input[i + 1] === 0x0a)) want.push(input[i] as number);
    const size = 1 + (next() % 40);
    assert.deepEqual(encodeInChunks(input, false, size), Buffer.from(want), `round ${round}, chunks of ${size}`);
  }
});

test('wireBytes is the size lfToCrlf gives the output, in any chunking (a Maildir W=)', () => {
  const input = Buffer.concat([sample, Buffer.from('\r\n\ra\n\r\r\n\n', 'latin1')]);
  for (let size = 1; size <= 17; size++) {
    const enc = new ArchiveEncoder(false, true);
    const out: Buffer[] = [];
    for (let i = 0; i < input.length; i += size) out.push(...enc.push(input.subarray(i, i + size)));
    out.push(...enc.end());
    assert.equal(enc.wireBytes, lfToCrlf(Buffer.concat(out)).length, `chunks of ${size}`);
  }
  const plain = new ArchiveEncoder(false);
  plain.push(sample);
  assert.equal(plain.wireBytes, 0, 'not counted unless asked');
});
