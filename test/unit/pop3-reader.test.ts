import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DotDecoder, ResponseReader, parseReply, type BodyTarget, type Reply } from '../../src/drivers/pop3/reader.js';
import { prng } from '../fixtures/nasty.js';

/**
 * The POP3 response reader at byte level: the multi-line terminator and dot-stuffing (RFC 1939 §3)
 * must be found and undone whatever the chunking of the byte stream, with bytes kept as bytes.
 */
const CRLF = Buffer.from('\r\n');
const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** What a server sends for `body`: stuffed lines, CRLF added if missing, then ".\r\n". */
function stuff(body: Buffer): Buffer {
  const text = body.toString('latin1');
  const lines = text.split('\r\n');
  if (text.endsWith('\r\n')) lines.pop();
  return b(lines.map((l) => (l.startsWith('.') ? '.' + l : l) + '\r\n').join('') + '.\r\n');
}

/** What a client must hand back for `body`: itself, with CRLF added when it did not end in one. */
function served(body: Buffer): Buffer {
  return body.length >= 2 && body[body.length - 2] === 0x0d && body[body.length - 1] === 0x0a ? body : Buffer.concat([body, CRLF]);
}

/** Decode `wire` delivered in `chunks` pieces; returns the body and the offset of what followed. */
function decode(wire: Buffer, cuts: number[]): { body: Buffer; rest: number } {
  const d = new DotDecoder();
  const out: Buffer[] = [];
  let pos = 0;
  for (const end of [...cuts, wire.length]) {
    const chunk = wire.subarray(pos, end);
    const r = d.push(chunk, (s) => out.push(Buffer.from(s)));
    if (r >= 0) return { body: Buffer.concat(out), rest: pos + r };
    pos = end;
  }
  return { body: Buffer.concat(out), rest: -1 };
}

function randomCuts(length: number, next: () => number, maxPiece: number): number[] {
  const cuts: number[] = [];
  for (let p = 1 + (next() % maxPiece); p < length; p += 1 + (next() % maxPiece)) cuts.push(p);
  return cuts;
}

const VECTORS: [string, Buffer, Buffer][] = [
  ['empty body', b('.\r\n'), b('')],
  ['one line', b('a\r\n.\r\n'), b('a\r\n')],
  ['lone dot line', b('x\r\n..\r\ny\r\n.\r\n'), b('x\r\n.\r\ny\r\n')],
  ['two and three dots', b('...\r\n....two\r\n.\r\n'), b('..\r\n...two\r\n')],
  ['dot space', b('.. dot space\r\n.\r\n'), b('. dot space\r\n')],
  ['dot then CR not LF', b('.\rX\r\n.\r\n'), b('\rX\r\n')],
  ['dot CR CR LF', b('.\r\r\n.\r\n'), b('\r\r\n')],
  ['dot after bare LF is not a line start', b('a\n.\r\n.\r\n'), b('a\n.\r\n')],
  ['8-bit and NUL bytes', Buffer.concat([b('\x00\xff\x80\xe9\r\n..\x00\r\n'), b('.\r\n')]), b('\x00\xff\x80\xe9\r\n.\x00\r\n')],
  ['empty lines', b('\r\n\r\n.\r\n'), b('\r\n\r\n')],
];

test('DotDecoder: known vectors, in one piece, split at every position, and byte by byte', () => {
  const trailer = b('+OK next\r\n');
  for (const [name, wire, want] of VECTORS) {
    const full = Buffer.concat([wire, trailer]);
    const whole = decode(full, []);
    assert.ok(whole.body.equals(want), `${name}: ${JSON.stringify(whole.body.toString('latin1'))}`);
    assert.equal(whole.rest, wire.length, `${name}: rest`);
    for (let k = 1; k < full.length; k++) {
      const split = decode(full, [k]);
      assert.ok(split.body.equals(want), `${name} split at ${k}`);
      assert.equal(split.rest, wire.length, `${name} split at ${k}: rest`);
    }
    const bytes = decode(full, Array.from({ length: full.length - 1 }, (_, i) => i + 1));
    assert.ok(bytes.body.equals(want), `${name} byte by byte`);
    assert.equal(bytes.rest, wire.length);
  }
});

test('DotDecoder: an unfinished body reports -1 and keeps its state', () => {
  const d = new DotDecoder();
  const out: Buffer[] = [];
  assert.equal(d.push(b('abc\r\n.'), (s) => out.push(Buffer.from(s))), -1);
  assert.equal(d.done, false);
  assert.equal(d.push(b('.\r\n.'), (s) => out.push(Buffer.from(s))), -1);
  assert.equal(d.push(b('\r'), (s) => out.push(Buffer.from(s))), -1);
  assert.equal(d.push(b('\nAFTER'), (s) => out.push(Buffer.from(s))), 1);
  assert.equal(d.done, true);
  assert.equal(Buffer.concat(out).toString('latin1'), 'abc\r\n.\r\n');
});

test('DotDecoder: the terminator of a 1 MB body split at every position around it', () => {
  const next = prng(7);
  const lines: string[] = [];
  for (let size = 0; size < 1 << 20;) {
    const kind = next() % 10;
    const line = kind === 0 ? '.' : kind === 1 ? '..' : kind === 2 ? '...x' : 'y'.repeat(next() % 90);
    lines.push(line);
    size += line.length + 2;
  }
  const body = b(lines.join('\r\n') + '\r\n');
  const wire = stuff(body);
  const t = wire.length - 5; // start of "\r\n.\r\n"
  for (let k = t - 3; k <= wire.length - 1; k++) {
    const r = decode(wire, [k]);
    assert.ok(r.body.equals(body), `split at terminator offset ${k - t}`);
    assert.equal(r.rest, wire.length);
  }
  // and a chunking with every piece ending inside a terminator-like run
  const r = decode(wire, randomCuts(wire.length, next, 7));
  assert.ok(r.body.equals(body));
});

test('DotDecoder: random bodies of dots, CR, LF, NUL and 8-bit bytes, random chunkings', () => {
  const next = prng(2024);
  const alphabet = [0x2e, 0x2e, 0x2e, 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0xff, 0x80, 0x61, 0x20];
  const trailer = b('-ERR [IN-USE] next\r\n');
  for (let round = 0; round < 400; round++) {
    const len = next() % 200;
    const body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = alphabet[next() % alphabet.length] as number;
    // Bodies are CRLF-lined on the wire; a lone LF or CR inside a line is data.
    const wire = stuff(body);
    const want = served(body);
    const full = Buffer.concat([wire, trailer]);
    for (let c = 0; c < 6; c++) {
      const r = decode(full, randomCuts(full.length, next, 1 + (next() % 8)));
      assert.ok(r.body.equals(want), `round ${round}: ${JSON.stringify(body.toString('latin1'))}`);
      assert.equal(r.rest, wire.length, `round ${round}: rest`);
    }
  }
});

interface Got {
  reply?: Reply;
  body?: Buffer;
  error?: Error;
}

function expectAll(reader: ResponseReader, multi: boolean[]): Got[] {
  return multi.map((m) => {
    const got: Got = {};
    const parts: Buffer[] = [];
    const target: BodyTarget = {
      write: (s) => parts.push(Buffer.from(s)),
      end: () => (got.body = Buffer.concat(parts)),
      fail: (e) => (got.error = e),
    };
    reader.expect({ multi: m, onReply: (r) => ((got.reply = r), target), onError: (e) => (got.error = e) });
    return got;
  });
}

test('ResponseReader: pipelined responses in any chunking', () => {
  const big = Buffer.alloc(300_000, 0x41);
  for (let i = 100; i < big.length; i += 1000) big.write('\r\n.', i - 3, 'latin1');
  const script: { multi: boolean; wire: Buffer; status: Reply['status']; code?: string; text: string; body?: Buffer }[] = [
    { multi: false, wire: b('+OK ready <1.2@x>\r\n'), status: '+OK', text: 'ready <1.2@x>' },
    { multi: true, wire: b('+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN\r\n.\r\n'), status: '+OK', text: '', body: b('TOP\r\nUIDL\r\nSASL PLAIN\r\n') },
    { multi: false, wire: b('+ \r\n'), status: '+', text: '' },
    { multi: false, wire: b('-ERR [IN-USE] Mailbox is locked\r\n'), status: '-ERR', code: 'IN-USE', text: 'Mailbox is locked' },
    { multi: true, wire: b('-ERR [SYS/TEMP] later\r\n'), status: '-ERR', code: 'SYS/TEMP', text: 'later' },
    { multi: true, wire: Buffer.concat([b('+OK 300000 octets\r\n'), stuff(big)]), status: '+OK', text: '300000 octets', body: served(big) },
    { multi: true, wire: b('+OK\r\n.\r\n'), status: '+OK', text: '', body: b('') },
    { multi: true, wire: Buffer.concat([b('+OK\r\n'), stuff(b('\x00\xff.\r\n.\r\n..\r\n'))]), status: '+OK', text: '', body: b('\x00\xff.\r\n.\r\n..\r\n') },
    { multi: false, wire: b('+OK bye\r\n'), status: '+OK', text: 'bye' },
  ];
  const wire = Buffer.concat(script.map((s) => s.wire));
  const next = prng(99);
  const chunkings: number[][] = [[], Array.from({ length: 400 }, (_, i) => i + 1)];
  for (let i = 0; i < 30; i++) chunkings.push(randomCuts(wire.length, next, 1 + (next() % 70_000)));
  for (const cuts of chunkings) {
    const reader = new ResponseReader();
    const got = expectAll(reader, script.map((s) => s.multi));
    let pos = 0;
    for (const end of [...cuts, wire.length]) {
      reader.feed(wire.subarray(pos, end));
      pos = end;
    }
    assert.equal(reader.pending, 0);
    script.forEach((s, i) => {
      const g = got[i] as Got;
      assert.equal(g.error, undefined);
      assert.equal(g.reply?.status, s.status, `response ${i}`);
      assert.equal(g.reply?.code, s.code, `response ${i} code`);
      assert.equal(g.reply?.text, s.text, `response ${i} text`);
      if (s.body !== undefined) assert.ok(g.body?.equals(s.body), `response ${i} body`);
      else assert.equal(g.body, undefined);
    });
  }
});

test('ResponseReader: garbage, unsolicited data and endless lines are protocol errors', () => {
  const r1 = new ResponseReader();
  assert.throws(() => r1.feed(b('+OK hello\r\n')), /unexpected data/);
  const r2 = new ResponseReader();
  expectAll(r2, [false]);
  assert.throws(() => r2.feed(b('* OK IMAP4rev1\r\n')), /unexpected response/);
  const r3 = new ResponseReader();
  expectAll(r3, [false]);
  assert.throws(() => r3.feed(Buffer.alloc(9000, 0x41)), /too long/);
});

test('ResponseReader: failAll fails the open body and every waiting command', () => {
  const reader = new ResponseReader();
  const got = expectAll(reader, [true, false]);
  reader.feed(b('+OK\r\npartial body'));
  reader.failAll(new Error('gone'));
  assert.equal(got[0]?.error?.message, 'gone');
  assert.equal(got[1]?.error?.message, 'gone');
  assert.equal(reader.pending, 0);
});

test('parseReply: status, response codes (RFC 2449), continuations', () => {
  assert.deepEqual(parseReply(b('+OK')), { status: '+OK', text: '' });
  assert.deepEqual(parseReply(b('+OK 2 320\r')), { status: '+OK', text: '2 320' });
  assert.deepEqual(parseReply(b('-ERR [AUTH] Authentication failed.')), { status: '-ERR', text: 'Authentication failed.', code: 'AUTH' });
  assert.deepEqual(parseReply(b('-ERR [sys/temp] try later')), { status: '-ERR', text: 'try later', code: 'SYS/TEMP' });
  assert.deepEqual(parseReply(b('-ERR')), { status: '-ERR', text: '' });
  assert.deepEqual(parseReply(b('+ ')), { status: '+', text: '' });
  assert.deepEqual(parseReply(b('+')), { status: '+', text: '' });
  assert.throws(() => parseReply(b('+OKAY')));
  assert.throws(() => parseReply(b('OK')));
});

test('retrLimit: the LIST size plus an eighth and 64 KiB, never over the maximum', async () => {
  const { retrLimit, MAX_MESSAGE_SIZE } = await import('../../src/drivers/pop3/reader.js');
  assert.equal(retrLimit(100), 100 + 13 + 65536);
  assert.equal(retrLimit(undefined), MAX_MESSAGE_SIZE);
  assert.equal(retrLimit(2 * MAX_MESSAGE_SIZE), MAX_MESSAGE_SIZE);
  assert.equal(MAX_MESSAGE_SIZE, 1 << 30);
});
