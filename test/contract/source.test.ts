import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { MailboxInfo, MessageMeta } from '../../src/domain/message.js';
import { MailferryError } from '../../src/domain/errors.js';
import type { Source } from '../../src/sources/source.js';
import { smallMessages, randomBytes } from '../fixtures/nasty.js';
import { withDovecot } from '../helpers/server.js';
import { archiveSourceKind, imapSourceKind, pop3SourceKind, type SourceKind } from '../helpers/sources.js';

/**
 * The Source contract suite: the same cases for every Source (src/sources/source.ts): IMAP and
 * POP3 against a real Dovecot, Maildir and mbox archives written by our own sinks from the same
 * messages (test/helpers/sources.ts). Each kind says what bytes it hands over for a seeded message
 * and whether it reports flags. Driver-specific cases stay in local-source and pop3-source.test.ts.
 */
const big = { raw: Buffer.from(`Subject: big\r\nMessage-ID: <big@x>\r\n\r\n${randomBytes(3_000_000, 9).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`) };
const inbox = [...smallMessages(40, 3), big];
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: inbox }] });
const THRESHOLD = 1 << 20;

const net = { server: () => dc.server, account: dc.alice, streamThreshold: THRESHOLD };
const kinds: { kind: SourceKind; skip: string | false }[] = [
  { kind: imapSourceKind(net), skip: dc.skip },
  { kind: pop3SourceKind(net), skip: dc.skip },
  { kind: archiveSourceKind('maildir', inbox, THRESHOLD), skip: false },
  { kind: archiveSourceKind('mbox', inbox, THRESHOLD), skip: false },
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

async function listAll(src: Source, box: MailboxInfo): Promise<MessageMeta[]> {
  const metas: MessageMeta[] = [];
  for await (const m of src.list(box, () => true)) metas.push(m);
  return metas;
}

for (const { kind, skip } of kinds) {
  describe(`Source contract: ${kind.name}`, { skip }, () => {
    before(async () => {
      await kind.prepare?.();
    });
    after(async () => {
      await kind.cleanup?.();
    });

    test('mailboxes lists INBOX; select gives its message count, and its uidValidity where the source has one', async () => {
      const src = kind.make();
      try {
        const all = await src.mailboxes();
        const listed = all.find((m) => m.path.toUpperCase() === 'INBOX');
        assert.ok(listed, 'INBOX listed');
        assert.equal(new Set(all.map((m) => m.path)).size, all.length, 'each mailbox once');
        const sel = await src.select(listed);
        assert.equal(sel.count, inbox.length);
        assert.equal(sel.mailbox.path, listed.path);
        if (kind.uidValidity) assert.equal(typeof sel.mailbox.uidValidity, 'bigint');
      } finally {
        await src.close();
      }
    });

    test('list yields every message once, without bodies, in ascending order; a filter is honoured', async () => {
      const src = kind.make();
      try {
        const box = await inboxOf(src);
        const metas = await listAll(src, box);
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
        if (kind.flags) assert.ok(metas.some((m) => m.flags.has('\\Seen')), 'flags reported');
        if (kind.flags) assert.ok(metas.every((m) => m.internalDate instanceof Date), 'internal dates reported');
        else assert.ok(metas.every((m) => m.flags.size === 0 && m.internalDate === undefined), 'no flags, no dates');
      } finally {
        await src.close();
      }
    });

    test('fetch yields each message once with the bytes the server holds; large ones stream', async () => {
      const src = kind.make();
      try {
        const box = await inboxOf(src);
        const metas = await listAll(src, box);
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
        // Only what is asked for: every other message of a batch of three, in any order.
        const asked = [metas[2], metas[0], metas[4]].filter((m): m is MessageMeta => m !== undefined);
        const got: string[] = [];
        for await (const f of src.fetch(asked, new AbortController().signal)) {
          await drain(f.body);
          got.push(f.meta.id);
        }
        assert.deepEqual(got.sort(), asked.map((m) => m.id).sort());
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
        const metas = await listAll(src, box);
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
        const metas = await listAll(src, box);
        assert.deepEqual(got.map((h) => h.id).sort(), metas.map((m) => m.id).sort(), 'the ids list() gives');
        const bytes = new Map<string, Buffer>();
        for await (const f of src.fetch(metas, new AbortController().signal)) bytes.set(f.meta.id, await drain(f.body));
        for (const h of got) {
          const b = bytes.get(h.id);
          assert.ok(b !== undefined);
          assert.ok(h.header.toString('latin1').endsWith('\r\n\r\n'), 'the header block, CRLF, blank line included');
          assert.ok(b.subarray(0, h.header.length).equals(h.header), 'as fetch hands it over');
          assert.ok(h.size === b.length || h.altSize === b.length, `${h.id}: size ${h.size} is the fetched size ${b.length}`);
        }
      } finally {
        await src.close();
      }
    });

    test('close never throws: twice, or on a source that did nothing', async () => {
      const idle = kind.make();
      await idle.close();
      await idle.close();
      const used = kind.make();
      await used.mailboxes();
      await used.close();
      await used.close();
    });

    // The archive sources have no login: the case exists only for the servers.
    if (kind.wrongLogin !== undefined) test('a wrong password is an auth error', async () => {
      const src = (kind.wrongLogin as () => Source)();
      try {
        await assert.rejects(inboxOf(src), (e: unknown) => e instanceof MailferryError && e.kind === 'auth');
      } finally {
        await src.close();
      }
    });
  });
}
