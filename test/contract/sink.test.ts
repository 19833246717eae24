import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MailferryError } from '../../src/domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../../src/domain/message.js';
import { fingerprintKey, headerBlock, toLf } from '../../src/formats/fingerprint.js';
import type { Fingerprint, Sink } from '../../src/sinks/sink.js';
import { withDovecot, type Account } from '../helpers/server.js';
import { imapKind, maildirKind, mboxKind, smtpKind, type SinkKind, type Stored } from '../helpers/sinks.js';
import { startSmtp, type TestSmtp } from '../helpers/smtp.js';

/**
 * The Sink contract suite: the same cases, word for word, for every Sink (src/sinks/sink.ts):
 * Maildir and mbox archives, the IMAP target against Dovecot, SMTP forward against smtp-server.
 * The kinds (test/helpers/sinks.ts) differ only in how the destination is read back and in what a
 * kind cannot do by nature (SMTP keeps no flags, and its `write` is final). Driver-specific cases
 * stay in archive-sink, imap-sink and smtp-sink.test.ts.
 */
const target: Account = { name: 'target', password: 'target-secret' };
const dc = withDovecot({ users: [{ ...target }] });
/** The relay refuses (550) a message with this header; the IMAP target and SMTP refuse an over-long stream. */
const REFUSE = 'X-Contract-Refuse: yes';
let relay: TestSmtp | undefined;
before(async () => {
  relay = await startSmtp({ mode: 'tls', onData: (_, d) => (d.includes(REFUSE) ? { code: 550, message: '5.7.1 not wanted' } : undefined) });
});
after(async () => {
  await relay?.stop();
});

const kinds: { kind: SinkKind; skip: string | false; refuses: boolean }[] = [
  { kind: maildirKind(), skip: false, refuses: false },
  { kind: mboxKind(), skip: false, refuses: false },
  { kind: imapKind(() => dc.server, target, true), skip: dc.skip, refuses: true },
  { kind: imapKind(() => dc.server, target, false), skip: dc.skip, refuses: true },
  {
    kind: smtpKind(() => {
      if (relay === undefined) throw new Error('the relay is not running');
      return relay;
    }),
    skip: false,
    refuses: true,
  },
];

let boxes = 0;
/** A mailbox of its own for each test (the IMAP server lives for the whole file). */
const box = (uidValidity = 7n): MailboxInfo => ({ path: `Contract/T${++boxes}`, delimiter: '/', uidValidity });
const msg = (mailbox: MailboxInfo, id: number, body: string, flags: string[] = []): { meta: MessageMeta; body: Buffer } => ({
  meta: { mailbox, id: String(id), size: Buffer.byteLength(body, 'latin1'), flags: new Set(flags), internalDate: new Date(Date.UTC(2020, 1, id, 10)) },
  body: Buffer.from(body, 'latin1'),
});
const messages = (m: MailboxInfo) => [
  msg(m, 1, 'Subject: one\r\nMessage-ID: <1@x>\r\n\r\nFrom the start\r\n>From quoted\r\n.\r\n', ['\\Seen', '$Label1']),
  msg(m, 2, 'Subject: two\r\n\r\nno final newline', ['\\Flagged', '\\Answered', 'project-x']),
  msg(m, 3, 'Subject: empty body\r\n\r\n', ['\\Draft']),
  msg(m, 4, 'Subject: 8bit \xe9\xff\r\n\r\nbare\nlf\r\n'),
];
const sorted = (ids: Iterable<string>): string[] => [...ids].sort();
/** The key the pipeline computes for a source message (its header block in LF form, its wire size). */
const keyOf = (b: Buffer): string => fingerprintKey(toLf(headerBlock(b)), b.length);

for (const { kind, skip, refuses } of kinds) {
  describe(`Sink contract: ${kind.name}`, { skip }, () => {
    const dirs: string[] = [];
    const fresh = async (): Promise<string> => {
      const d = await mkdtemp(join(tmpdir(), `mf-sink-${kind.name.replace(/\W/g, '')}-`));
      dirs.push(d);
      return d;
    };
    after(async () => {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    });
    /** A fresh sink folder with a transaction begun and message 1 written in it; messages 1 and 3 as `a` and `c`. */
    const firstWritten = async () => {
      const dir = await fresh();
      const m = box();
      const [a, , c] = messages(m) as [ReturnType<typeof msg>, unknown, ReturnType<typeof msg>];
      const sink = await kind.make(dir);
      const folder = await sink.open(m);
      const tx = await folder.begin();
      await tx.write(a.meta, a.body);
      return { dir, m, a, c, sink, folder, tx };
    };
    /** Each message stored exactly once, in the kind's stored form. */
    const assertStoredOnce = (back: Stored[], written: { body: Buffer }[], what: string): void => {
      assert.equal(back.length, written.length, `${what}: as many stored as written`);
      for (const x of written) {
        const n = back.filter((b) => b.body.equals(kind.stored(x.body))).length;
        assert.equal(n, 1, `${what}: ${JSON.stringify(x.body.subarray(0, 20).toString('latin1'))} stored once, byte-exact`);
      }
    };

    test('open knows nothing at first; commit makes the messages durable and known, with flags and dates where kept; a reopened sink knows them', async () => {
      const dir = await fresh();
      const m = box();
      const sink = await kind.make(dir);
      const folder = await sink.open(m);
      assert.equal(folder.known.size, 0);
      assert.equal(folder.needsRematch, false);
      const tx = await folder.begin();
      for (const x of messages(m)) await tx.write(x.meta, x.body);
      await tx.commit();
      assert.deepEqual(sorted(folder.known), ['1', '2', '3', '4']);
      await sink.close();
      const back = await kind.read(dir, m);
      assertStoredOnce(back, messages(m), 'after commit');
      for (const x of messages(m)) {
        const found = back.find((b) => b.body.equals(kind.stored(x.body)));
        if (kind.keepsFlags) assert.deepEqual(found?.flags, x.meta.flags, `flags of ${x.meta.id}`);
        if (kind.keepsDate) assert.equal(found?.date?.getTime(), x.meta.internalDate?.getTime(), `date of ${x.meta.id}`);
      }
      const again = await kind.make(dir);
      const reopened = await again.open(m);
      assert.deepEqual(sorted(reopened.known), ['1', '2', '3', '4'], 'the checkpoint is durable');
      assert.equal(reopened.needsRematch, false);
      await again.close();
    });

    test('a streamed body is written like a buffered one', async () => {
      const dir = await fresh();
      const m = box();
      const sink = await kind.make(dir);
      const folder = await sink.open(m);
      const big = Buffer.from(`Subject: big\r\n\r\n${'From line\r\nabc\r\n'.repeat(50_000)}`);
      const chunks: Buffer[] = [];
      for (let i = 0; i < big.length; i += 777) chunks.push(big.subarray(i, i + 777));
      const tx = await folder.begin();
      await tx.write({ mailbox: m, id: '9', size: big.length, flags: new Set(), internalDate: new Date(0) }, Readable.from(chunks));
      await tx.commit();
      await sink.close();
      assertStoredOnce(await kind.read(dir, m), [{ body: big }], 'streamed');
    });

    test("a body stream that fails mid-way: write rejects with the source's error (retryable, never `destination`), keeps nothing of it, and what was written before still commits", async () => {
      const { dir, m, a, c, sink, folder, tx } = await firstWritten();
      // As imapflow's stream fails when the connection drops: an error with a code of its own,
      // after a first chunk.
      let reads = 0;
      const cut = new Readable({
        read(this: Readable) {
          if (reads++ === 0) this.push(Buffer.from(`Subject: cut\r\n\r\n${'x'.repeat(100_000)}`));
          else this.destroy(Object.assign(new Error('Connection not available'), { code: 'NoConnection' }));
        },
      });
      await assert.rejects(tx.write({ mailbox: m, id: '6', size: 300_000, flags: new Set() }, cut), (e: unknown) => {
        assert.ok(e instanceof MailferryError && e.kind !== 'destination' && e.retryable, `the source's error, not ${String(e)}`);
        return true;
      });
      await tx.write(c.meta, c.body);
      await tx.commit();
      assert.deepEqual(sorted(folder.known), ['1', '3']);
      await sink.close();
      assertStoredOnce(await kind.read(dir, m), [a, c], 'without the cut one');
    });

    test('abort and a crash before commit acknowledge nothing that is not stored; a rerun (re-matching first when the sink asks, as the pipeline does) writes each message exactly once', async () => {
      const dir = await fresh();
      const m = box();
      // Wire-form messages (the Source contract): the source's keys are the sink's.
      const all = [...messages(m).slice(0, 3), msg(m, 4, 'Subject: four\r\n\r\nfour\r\n')];
      const [a, b, c] = all as [(typeof all)[number], (typeof all)[number], (typeof all)[number]];
      const sink = await kind.make(dir);
      const folder = await sink.open(m);
      let tx = await folder.begin();
      await tx.write(a.meta, a.body);
      await tx.commit();
      tx = await folder.begin();
      await tx.write(b.meta, b.body);
      await tx.abort();
      tx = await folder.begin();
      await tx.write(c.meta, c.body);
      await sink.close(); // no commit: as if killed

      const rerun = await kind.make(dir);
      const f2 = await rerun.open(m);
      if (kind.finalWrites) {
        // What the relay accepted is recorded before write resolves: known, and not sent again.
        assert.deepEqual(sorted(f2.known), ['1', '2', '3']);
      } else {
        assert.deepEqual(sorted(f2.known), ['1'], 'only what was committed');
      }
      if (f2.needsRematch) {
        // The destination holds what its record does not account for (an IMAP target that
        // appended before the crash): matched against the source's keys, as the pipeline does.
        const fps: Fingerprint[] = [];
        for await (const fp of f2.fingerprints()) fps.push(fp);
        const claimed = new Set<string>();
        const matches = all.flatMap((x) => {
          if (f2.known.has(x.meta.id)) return [];
          const fp = fps.find((f) => !claimed.has(f.ref) && (f.key === keyOf(x.body) || f.alt === keyOf(x.body)));
          if (fp === undefined) return [];
          claimed.add(fp.ref);
          return [{ id: x.meta.id, ref: fp.ref, ...(fp.alt === keyOf(x.body) ? { alt: true } : {}) }];
        });
        await f2.rebase(m.uidValidity, matches);
      }
      // The rerun writes what the reopened folder does not know, as the pipeline does.
      const tx2 = await f2.begin();
      for (const x of all) if (!f2.known.has(x.meta.id)) await tx2.write(x.meta, x.body);
      await tx2.commit();
      assert.deepEqual(sorted(f2.known), ['1', '2', '3', '4']);
      await rerun.close();
      assertStoredOnce(await kind.read(dir, m), all, 'after the rerun');
      const third = await kind.make(dir);
      const f3 = await third.open(m);
      assert.deepEqual(sorted(f3.known), ['1', '2', '3', '4']);
      assert.equal(f3.needsRematch, false);
      await third.close();
    });

    // An archive stores any message: the case exists only for the sinks that can refuse one.
    if (refuses) test('a refused message is reported (a `message` error from write, or tx.refused()), not recorded; the others are committed', async () => {
      const { dir, m, a, c, sink, folder, tx } = await firstWritten();
      // The relay refuses it by its header; a stream three times longer than the size announced
      // is refused by a sink that holds it whole (SMTP) or spools it (IMAP) before sending.
      const bad = Buffer.from(`Subject: refuse me\r\n${REFUSE}\r\n\r\n${'y'.repeat(200_000)}\r\n`, 'latin1');
      let thrown = false;
      try {
        await tx.write({ mailbox: m, id: '5', size: 100, flags: new Set() }, Readable.from([bad]));
      } catch (e: unknown) {
        assert.ok(e instanceof MailferryError && e.kind === 'message', `a message error, not ${String(e)}`);
        thrown = true;
      }
      await tx.write(c.meta, c.body);
      await tx.commit();
      const refused = tx.refused?.() ?? [];
      assert.equal(thrown, !refused.some((r) => r.id === '5'), 'reported exactly one way');
      assert.ok(refused.every((r) => r.id === '5' && r.reason.length > 0));
      assert.deepEqual(sorted(folder.known), ['1', '3']);
      await sink.close();
      assertStoredOnce(await kind.read(dir, m), [a, c], 'without the refused one');
      const again = await kind.make(dir);
      assert.deepEqual(sorted((await again.open(m)).known), ['1', '3'], 'a rerun tries it again');
      await again.close();
    });

    test('transactions begun together all land, none interleaved into another', async () => {
      const dir = await fresh();
      const m = box();
      const sink = await kind.make(dir);
      const folder = await sink.open(m);
      const written: { body: Buffer }[] = [];
      await Promise.all(
        [0, 1, 2, 3].map(async (n) => {
          const tx = await folder.begin();
          for (let i = 0; i < 5; i++) {
            const x = msg(m, n * 10 + i + 1, `Subject: ${n}-${i}\r\nMessage-ID: <${n}-${i}@x>\r\n\r\nbody ${n} ${i}\r\n`);
            written.push(x);
            await tx.write(x.meta, x.body);
            await new Promise((r) => setTimeout(r, 1));
          }
          await tx.commit();
        }),
      );
      assert.equal(folder.known.size, 20);
      await sink.close();
      assertStoredOnce(await kind.read(dir, m), written, 'parallel transactions');
    });

    test('a changed UIDVALIDITY asks for a re-match: fingerprints match the source keys, rebase records the matches', async () => {
      const dir = await fresh();
      const m = box(7n);
      // Wire-form messages (CRLF throughout), so every sink's key is the source's.
      const wire = messages(m).filter((x) => x.meta.id === '1' || x.meta.id === '3').concat(msg(m, 5, 'Subject: five\r\n\r\nfive\r\n'));
      const sink = await kind.make(dir);
      const folder = await sink.open(m);
      const tx = await folder.begin();
      for (const x of wire) await tx.write(x.meta, x.body);
      await tx.commit();
      await sink.close();

      const renewed = { ...m, uidValidity: 8n };
      const again = await kind.make(dir);
      const f2 = await again.open(renewed);
      assert.equal(f2.needsRematch, true);
      // A sink may keep ids it can still vouch for (the IMAP target's recorded UIDs); none of the old ones.
      assert.ok([...f2.known].every((id) => !wire.some((x) => x.meta.id === id)));
      const fps: Fingerprint[] = [];
      for await (const fp of f2.fingerprints()) fps.push(fp);
      assert.equal(new Set(fps.map((f) => f.ref)).size, fps.length, 'refs tell stored messages apart');
      const matches = wire.slice(0, 2).map((x) => {
        const fp = fps.find((f) => f.key === keyOf(x.body) || f.alt === keyOf(x.body));
        assert.ok(fp, `message ${x.meta.id} has a fingerprint with the source's key`);
        return { id: String(Number(x.meta.id) + 100), ref: fp.ref };
      });
      await f2.rebase(8n, matches);
      assert.deepEqual(sorted(f2.known), ['101', '103']);
      assert.equal(f2.needsRematch, false);
      await again.close();
      const third = await kind.make(dir);
      const f3 = await third.open(renewed);
      assert.equal(f3.needsRematch, false);
      assert.deepEqual(sorted(f3.known), ['101', '103'], 'the matches are durable');
      await third.close();
      assertStoredOnce(await kind.read(dir, m), wire, 'nothing removed, nothing added');
    });

    test('a \\Noselect mailbox opens (the hierarchy) and its child takes messages', async () => {
      const dir = await fresh();
      const parent = box();
      const sink = await kind.make(dir);
      await sink.open({ path: parent.path, delimiter: '/', noSelect: true });
      const child = { ...parent, path: `${parent.path}/Child` };
      const folder = await sink.open(child);
      const x = msg(child, 1, 'Subject: x\r\n\r\ny\r\n');
      const tx = await folder.begin();
      await tx.write(x.meta, x.body);
      await tx.commit();
      await sink.close();
      assertStoredOnce(await kind.read(dir, child), [x], 'child');
    });

    test('close never throws: twice, or on a sink that opened nothing', async () => {
      const dir = await fresh();
      const idle: Sink = await kind.make(dir);
      await idle.close();
      await idle.close();
      const used = await kind.make(dir);
      await used.open(box());
      await used.close();
      await used.close();
    });
  });
}
