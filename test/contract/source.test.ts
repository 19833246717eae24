import { passwordCredentials } from '../../src/auth/credentials.js';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { MailboxInfo, MessageMeta } from '../../src/domain/message.js';
import { MailferryError } from '../../src/domain/errors.js';
import { silentLogger } from '../../src/log/logger.js';
import { ImapSource } from '../../src/drivers/imap/source.js';
import { Pop3Source } from '../../src/drivers/pop3/source.js';
import type { Source } from '../../src/sources/source.js';
import { imapView, pop3View, smallMessages, randomBytes } from '../fixtures/nasty.js';
import { withDovecot } from '../helpers/server.js';

/**
 * The Source contract suite: the same tests for every Source, against a real Dovecot. Each kind
 * says how to build the source and what bytes the server is expected to hand over.
 */
const big = { raw: Buffer.from(`Subject: big\r\nMessage-ID: <big@x>\r\n\r\n${randomBytes(3_000_000, 9).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`) };
const inbox = [...smallMessages(40, 3), big];
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: inbox }] });
const THRESHOLD = 1 << 20;

interface Kind {
  name: string;
  make(password?: string): Source;
  view(raw: Buffer): Buffer;
}

const common = (password: string) => ({
  credentials: passwordCredentials(password),
  insecure: false,
  streamThreshold: THRESHOLD,
  log: silentLogger,
  debug: false,
});

const kinds: Kind[] = [
  {
    name: 'imap',
    make: (pw = dc.alice.password) =>
      new ImapSource({
        ...common(pw),
        ca: readFileSync(dc.server.caFile),
        endpoint: { kind: 'imap', user: 'alice', host: '127.0.0.1', port: dc.server.imapsPort, tls: 'tls' },
        connections: 3,
      }),
    view: imapView,
  },
  {
    name: 'pop3',
    make: (pw = dc.alice.password) =>
      new Pop3Source({
        ...common(pw),
        ca: readFileSync(dc.server.caFile),
        endpoint: { kind: 'pop3', user: 'alice', host: '127.0.0.1', port: dc.server.pop3sPort, tls: 'tls' },
      }),
    view: pop3View,
  },
];

async function drain(body: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const parts: Buffer[] = [];
  for await (const c of body as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

async function inboxOf(src: Source): Promise<MailboxInfo> {
  const all = await src.mailboxes();
  const box = all.find((m) => m.path.toUpperCase() === 'INBOX');
  assert.ok(box, 'INBOX listed');
  return (await src.select(box)).mailbox;
}

for (const kind of kinds) {
  describe(`Source contract: ${kind.name}`, { skip: dc.skip }, () => {
    test('list yields every message once, without bodies, in ascending order; a filter is honoured', async () => {
      const src = kind.make();
      try {
        const box = await inboxOf(src);
        const metas: MessageMeta[] = [];
        for await (const m of src.list(box, () => true)) metas.push(m);
        assert.equal(metas.length, inbox.length);
        assert.equal(new Set(metas.map((m) => m.id)).size, inbox.length);
        assert.ok(metas.every((m) => (m.size ?? 0) > 0));
        const skipFirst = new Set([metas[0]!.id]);
        let n = 0;
        for await (const m of src.list(box, (id) => !skipFirst.has(id))) {
          assert.notEqual(m.id, metas[0]!.id);
          n++;
        }
        assert.equal(n, inbox.length - 1);
        if (src.caps.flags) assert.ok(metas.some((m) => m.flags.has('\\Seen')), 'flags reported');
      } finally {
        await src.close();
      }
    });

    test('fetch yields each message once with the bytes the server holds; large ones stream', async () => {
      const src = kind.make();
      try {
        const box = await inboxOf(src);
        const metas: MessageMeta[] = [];
        for await (const m of src.list(box, () => true)) metas.push(m);
        const wanted = new Map(inbox.map((m) => [kind.view(m.raw).toString('latin1'), m]));
        const seen = new Set<string>();
        for await (const f of src.fetch(metas, new AbortController().signal)) {
          assert.equal(seen.has(f.meta.id), false, 'at most once');
          seen.add(f.meta.id);
          const bytes = await drain(f.body);
          assert.ok(wanted.has(bytes.toString('latin1')), `${kind.name} ${f.meta.id}: byte-exact`);
          assert.equal(f.body instanceof Readable, bytes.length > THRESHOLD, 'streamed iff large');
        }
        assert.equal(seen.size, metas.length);
      } finally {
        await src.close();
      }
    });

    test('missing(): an id the server does not have is gone, ones it has are not', async () => {
      const src = kind.make();
      try {
        const box = await inboxOf(src);
        const metas: MessageMeta[] = [];
        for await (const m of src.list(box, () => true)) metas.push(m);
        const there = metas.map((m) => m.id);
        const ghost = kind.name === 'imap' ? '999999' : 'no-such-uidl';
        const found = await src.missing(box, [...there.slice(0, 3), ghost], new AbortController().signal);
        assert.deepEqual([...found.gone], [ghost]);
        assert.equal(found.refused?.size ?? 0, 0);
        // Asked anew each time, and the source goes on working afterwards.
        let n = 0;
        for await (const _f of src.fetch(metas.slice(0, 2), new AbortController().signal)) n++;
        assert.equal(n, 2);
      } finally {
        await src.close();
      }
    });

    test('fetch may run caps.parallel times at once', async () => {
      const src = kind.make();
      try {
        const box = await inboxOf(src);
        const metas: MessageMeta[] = [];
        for await (const m of src.list(box, () => true)) metas.push(m);
        const small = metas.filter((m) => (m.size ?? 0) < THRESHOLD);
        const parts = Array.from({ length: src.caps.parallel }, (_, i) => small.filter((_m, j) => j % src.caps.parallel === i));
        const counts = await Promise.all(
          parts.map(async (part) => {
            let n = 0;
            for await (const f of src.fetch(part, new AbortController().signal)) {
              await drain(f.body);
              n++;
            }
            return n;
          }),
        );
        assert.equal(counts.reduce((a, b) => a + b, 0), small.length);
      } finally {
        await src.close();
      }
    });

    test('headers yields every message with its size and header block', async () => {
      const src = kind.make();
      try {
        const box = await inboxOf(src);
        const got = [];
        for await (const h of src.headers(box)) got.push(h);
        assert.equal(got.length, inbox.length);
        assert.ok(got.every((h) => /\r?\n\r?\n$/.test(h.header.toString('latin1')) && h.size > h.header.length));
      } finally {
        await src.close();
      }
    });

    test('a wrong password is an auth error', async () => {
      const src = kind.make('wrong-password');
      try {
        await assert.rejects(inboxOf(src), (e: unknown) => e instanceof MailferryError && e.kind === 'auth');
      } finally {
        await src.close();
      }
    });
  });
}
