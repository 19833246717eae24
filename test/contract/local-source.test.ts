import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { STATE_FILE } from '../../src/commands/archive.js';
import type { MailboxInfo, MessageMeta } from '../../src/domain/message.js';
import { CrlfStream, lfToCrlf } from '../../src/formats/encoder.js';
import { silentLogger } from '../../src/log/logger.js';
import { MaildirSink } from '../../src/drivers/maildir/sink.js';
import { MboxSink } from '../../src/drivers/mbox/sink.js';
import type { Sink } from '../../src/sinks/sink.js';
import { MaildirSource } from '../../src/drivers/maildir/source.js';
import { MboxSource } from '../../src/drivers/mbox/source.js';
import type { Source } from '../../src/sources/source.js';
import { Checkpoint } from '../../src/state/checkpoint.js';
import { randomBytes } from '../fixtures/nasty.js';

/**
 * What only the local archive Sources do (the contract every Source keeps is source.test.ts): an
 * archive with many folders is written with the real sinks, then read
 * back through MaildirSource (both layouts) and MboxSource. What comes back must be what was
 * written: the folders (Unicode, '/'), and for each message its wire bytes (CRLF), flags and date.
 */
const THRESHOLD = 64 * 1024;
const UIDVALIDITY = 7n;
const SOURCE = 'imaps://alice@example.org:993';

interface Msg {
  raw: Buffer;
  flags: string[];
  date: Date;
}

const crlf = (...lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');
let n = 0;
function msg(body: string | Buffer, flags: string[] = [], extraHead = ''): Msg {
  n++;
  const head = Buffer.from(crlf(`Subject: case ${n}`, `Message-ID: <m${n}@x>`) + extraHead + '\r\n', 'utf8');
  return {
    raw: Buffer.concat([head, typeof body === 'string' ? Buffer.from(body, 'utf8') : body]),
    flags,
    date: new Date(Date.UTC(2020, 0, 1 + n, 12, 30, 15)),
  };
}

const big = msg(randomBytes(400_000, 5).toString('base64').replace(/.{76}/g, '$&\r\n') + '\r\n', ['\\Seen', '\\Answered']);
const inbox: Msg[] = [
  msg(crlf('From the start', '>From quoted', '>>From twice', 'From alice@example.org Mon Jan  1 00:00:00 2001', 'end'), ['\\Flagged']),
  msg(Buffer.from('NUL\0here, 8-bit: Grüße \xff\r\n', 'latin1'), ['\\Seen', '$Label1', 'project-x'], 'Content-Transfer-Encoding: 8bit\r\n'),
  msg('no final newline\r\nlast line', ['\\Seen']),
  msg('', []),
  msg(crlf('plain', '', 'text'), ['\\Seen', '\\Draft', '\\Deleted']),
  big,
  msg('From \r\nends in a From_ line\r\nFrom ', ['$Label1']),
];

interface FolderSpec {
  path: string;
  noSelect?: boolean;
  messages: Msg[];
}

const folders: FolderSpec[] = [
  { path: 'INBOX', messages: inbox },
  { path: 'Archive', messages: [msg('archived\r\n', ['\\Seen'])] },
  { path: 'Archive/2023', messages: [msg('nested\r\n', ['project-x'])] },
  { path: 'Empty', messages: [] },
  { path: 'Parent', noSelect: true, messages: [] },
  { path: 'Parent/Child', messages: [msg('child\r\n', [])] },
  { path: 'Grüße', noSelect: true, messages: [] },
  { path: 'Grüße/日本語', messages: [msg('日本語の本文です。\r\n', ['\\Seen'])] },
  { path: '~a.b', messages: [msg('dots and tilde\r\n', ['\\Answered'])] },
];

async function build(sink: Sink, checkpoint: Checkpoint): Promise<void> {
  for (const f of folders) {
    const mailbox: MailboxInfo = { path: f.path, delimiter: '/', uidValidity: UIDVALIDITY, ...(f.noSelect ? { noSelect: true } : {}) };
    const folder = await sink.open(mailbox);
    if (f.noSelect) continue;
    const tx = await folder.begin();
    let uid = 0;
    for (const m of f.messages) {
      uid++;
      const meta: MessageMeta = { mailbox, id: String(uid), size: m.raw.length, flags: new Set(m.flags), internalDate: m.date };
      // The big one goes in as a stream, as a remote Source hands it over.
      await tx.write(meta, m.raw.length > THRESHOLD ? Readable.from([m.raw.subarray(0, 1000), m.raw.subarray(1000)]) : m.raw);
    }
    await tx.commit();
  }
  await sink.close();
  await checkpoint.save();
}

async function drain(body: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const parts: Buffer[] = [];
  for await (const c of body as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

interface Kind {
  name: string;
  sink(root: string, cp: Checkpoint): Sink;
  source(root: string): Source;
  ascending(a: string, b: string): boolean;
  /** list() gives the exact wire size (else an estimate no larger than it). */
  exactSize: boolean;
}

const kinds: Kind[] = [
  {
    name: 'maildir (maildir++)',
    sink: (root, cp) => new MaildirSink(root, 'maildir++', cp, silentLogger),
    source: (root) => new MaildirSource({ root, layout: 'maildir++', streamThreshold: THRESHOLD, log: silentLogger }),
    ascending: (a, b) => a < b,
    exactSize: false,
  },
  {
    name: 'maildir (fs)',
    sink: (root, cp) => new MaildirSink(root, 'fs', cp, silentLogger),
    source: (root) => new MaildirSource({ root, layout: 'fs', streamThreshold: THRESHOLD, log: silentLogger }),
    ascending: (a, b) => a < b,
    exactSize: false,
  },
  {
    name: 'mbox',
    sink: (root, cp) => new MboxSink(root, cp),
    source: (root) => new MboxSource({ root, streamThreshold: THRESHOLD, log: silentLogger }),
    ascending: (a, b) => Number(a) < Number(b),
    exactSize: true,
  },
];

for (const kind of kinds) {
  describe(`archive source: ${kind.name}`, () => {
    let root = '';
    let src: Source;
    before(async () => {
      root = await mkdtemp(join(tmpdir(), 'mailferry-local-source-'));
      const cp = await Checkpoint.load(join(root, STATE_FILE), SOURCE);
      await build(kind.sink(root, cp), cp);
      src = kind.source(root);
    });
    after(async () => {
      await src.close();
      await rm(root, { recursive: true, force: true });
    });

    const selectByPath = async (path: string): Promise<MailboxInfo> => {
      const box = (await src.mailboxes()).find((m) => m.path === path);
      assert.ok(box, `${path} listed`);
      return (await src.select(box)).mailbox;
    };

    test('mailboxes() gives back exactly the folders written, parents first', async () => {
      const got = await src.mailboxes();
      const want = folders.map((f) => ({ path: f.path, noSelect: f.noSelect === true })).sort((a, b) => (a.path < b.path ? -1 : 1));
      assert.deepEqual(
        got.map((m) => ({ path: m.path, noSelect: m.noSelect === true })).sort((a, b) => (a.path < b.path ? -1 : 1)),
        want,
      );
      assert.ok(got.every((m) => m.delimiter === '/'));
      got.forEach((m, i) => {
        const parent = m.path.split('/').slice(0, -1).join('/');
        if (parent !== '') assert.ok(got.findIndex((p) => p.path === parent) < i, `${parent} before ${m.path}`);
      });
    });

    test('select() reports the archived uidValidity and the message count', async () => {
      for (const f of folders.filter((x) => x.noSelect !== true)) {
        const box = (await src.mailboxes()).find((m) => m.path === f.path);
        assert.ok(box);
        const sel = await src.select(box);
        assert.equal(sel.mailbox.uidValidity, UIDVALIDITY, f.path);
        assert.equal(sel.count, f.messages.length, f.path);
      }
    });

    for (const f of folders.filter((x) => x.noSelect !== true)) {
      test(`${f.path}: list, fetch and headers give back what was written`, async () => {
        const box = await selectByPath(f.path);
        const metas = await collect(src.list(box, () => true));
        assert.equal(metas.length, f.messages.length);
        assert.equal(new Set(metas.map((m) => m.id)).size, metas.length, 'each message once');
        for (let i = 1; i < metas.length; i++) assert.ok(kind.ascending(metas[i - 1]!.id, metas[i]!.id), 'ascending ids');

        const wanted = new Map(f.messages.map((m) => [m.raw.toString('latin1'), m]));
        const bytesOf = new Map<string, Buffer>();
        for await (const got of src.fetch(metas, new AbortController().signal)) {
          assert.equal(bytesOf.has(got.meta.id), false, 'at most once');
          const bytes = await drain(got.body);
          bytesOf.set(got.meta.id, bytes);
          const m = wanted.get(bytes.toString('latin1'));
          assert.ok(m, `${got.meta.id}: byte-exact (${JSON.stringify(bytes.subarray(0, 60).toString('latin1'))})`);
          assert.equal(got.body instanceof Readable, bytes.length > THRESHOLD, 'streamed iff large');
          assert.deepEqual([...got.meta.flags].sort(), [...m.flags].sort(), 'flags as written');
          assert.equal(got.meta.internalDate?.getTime(), m.date.getTime(), 'date as written');
          if (kind.exactSize) assert.equal(got.meta.size, bytes.length, 'exact size');
          else assert.ok((got.meta.size ?? 0) <= bytes.length && (got.meta.size ?? 0) > 0, 'size estimate');
        }
        assert.equal(bytesOf.size, f.messages.length);

        const heads = await collect(src.headers(box));
        assert.equal(heads.length, f.messages.length);
        for (const h of heads) {
          const bytes = bytesOf.get(h.id);
          assert.ok(bytes, 'headers() ids are list() ids');
          assert.equal(h.size, bytes.length);
          assert.ok(h.header.toString('latin1').endsWith('\r\n\r\n'));
          assert.ok(bytes.subarray(0, h.header.length).equals(h.header));
        }

        if (metas.length > 0) {
          const skip = metas[0]!.id;
          const rest = await collect(src.list(box, (id) => id !== skip));
          assert.deepEqual(rest.map((m) => m.id), metas.slice(1).map((m) => m.id), 'filter honoured');
        }
      });
    }

    test('a message that is not there is not yielded', async () => {
      const box = await selectByPath('INBOX');
      const ghost: MessageMeta = { mailbox: box, id: '999999', flags: new Set() };
      const metas = await collect(src.list(box, () => true));
      const got = await collect(src.fetch([ghost, metas[1]!], new AbortController().signal));
      assert.deepEqual(got.map((g) => g.meta.id), [metas[1]!.id]);
    });

    test('missing(): an id that is not there is gone, one that is there is not', async () => {
      const box = await selectByPath('INBOX');
      const metas = await collect(src.list(box, () => true));
      const found = await src.missing(box, ['999999', metas[1]!.id], new AbortController().signal);
      assert.deepEqual([...found.gone], ['999999']);
      assert.equal(found.refused?.size ?? 0, 0);
      assert.equal(found.held?.size ?? 0, 0);
    });

    test('fetch stops on abort', async () => {
      const box = await selectByPath('INBOX');
      const metas = await collect(src.list(box, () => true));
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(collect(src.fetch(metas, ac.signal)), (e: unknown) => (e as { kind?: string }).kind === 'interrupted');
    });
  });
}

describe('local sources without a state file', () => {
  test('uidValidity defaults to 1 and messages still come back', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mailferry-local-source-'));
    try {
      const cp = await Checkpoint.load(join(root, STATE_FILE), SOURCE);
      await build(new MaildirSink(root, 'maildir++', cp, silentLogger), cp);
      await rm(join(root, STATE_FILE));
      const src = new MaildirSource({ root, layout: 'maildir++', streamThreshold: THRESHOLD, log: silentLogger });
      const box = (await src.mailboxes()).find((m) => m.path === 'INBOX');
      assert.ok(box);
      const sel = await src.select(box);
      assert.equal(sel.mailbox.uidValidity, 1n);
      assert.equal(sel.count, inbox.length);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('CrlfStream', () => {
  test('equals lfToCrlf whatever the chunking', async () => {
    const input = Buffer.from('a\nb\r\nc\r\r\n\n\rd\n\r\n\r', 'latin1');
    const want = lfToCrlf(input);
    for (let cut = 0; cut <= input.length; cut++) {
      for (let cut2 = cut; cut2 <= input.length; cut2++) {
        const chunks = [input.subarray(0, cut), input.subarray(cut, cut2), input.subarray(cut2)];
        const got = await drain(Readable.from(chunks).pipe(new CrlfStream()));
        assert.ok(got.equals(want), `cut at ${cut},${cut2}`);
      }
    }
  });
});
