import { passwordCredentials } from '../../src/auth/credentials.js';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { MailferryError } from '../../src/domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../../src/domain/message.js';
import { lfToCrlf } from '../../src/formats/encoder.js';
import { fingerprintKey, headerBlock, toLf } from '../../src/formats/fingerprint.js';
import { silentLogger } from '../../src/log/logger.js';
import { ImapAppendSink, targetKey } from '../../src/drivers/imap/target.js';
import type { Fingerprint } from '../../src/sinks/sink.js';
import { Checkpoint } from '../../src/state/checkpoint.js';
import { connect, fetchAll, withDovecot, type Account } from '../helpers/server.js';
import { withTmpdir } from '../helpers/tmpdir.js';

/**
 * The Sink contract for the IMAP target, against a real Dovecot user `target`. The source is
 * imaginary: mailboxes and messages are made here, as in sink.test.ts. Every test uses its own
 * target folders (the server lives for the whole file) and its own checkpoint file.
 */
const target: Account = { name: 'target', password: 'target-secret' };
const dc = withDovecot({ users: [{ ...target }] });
const SOURCE = 'imap://source@example.org:143';

const box = (path: string, uidValidity = 7n, delimiter = '/'): MailboxInfo => ({ path, delimiter, uidValidity });
const msg = (mailbox: MailboxInfo, id: number, body: string, flags: string[] = [], date = new Date(Date.UTC(2020, 1, id, 10))): { meta: MessageMeta; body: Buffer } => ({
  meta: { mailbox, id: String(id), size: Buffer.byteLength(body, 'latin1'), flags: new Set(flags), internalDate: date },
  body: Buffer.from(body, 'latin1'),
});
const messages = (m: MailboxInfo) => [
  msg(m, 1, 'Subject: one\r\nMessage-ID: <1@x>\r\n\r\nFrom the start\r\n>From quoted\r\n.\r\n', ['\\Seen', '$Label1', '\\Recent']),
  msg(m, 2, 'Subject: two\r\n\r\nno final newline', ['\\Flagged', '\\Answered', 'project-x']),
  msg(m, 3, 'Subject: empty body\r\n\r\n', ['\\Draft', '\\Deleted']),
  msg(m, 4, 'Subject: 8bit \xe9\xff\r\n\r\nbare\nlf\r\n'),
];

async function makeSink(stateDir: string, password = target.password, tls: 'plain' | 'starttls' = 'plain', ca?: Buffer, multiAppend = true, maxAppendBytes?: number): Promise<ImapAppendSink> {
  const s = dc.server;
  return new ImapAppendSink({
    endpoint: { kind: 'imap', user: target.name, host: s.host, port: s.imapPort, tls },
    credentials: passwordCredentials(password),
    ...(ca === undefined ? {} : { ca }),
    insecure: false,
    connections: 3,
    checkpoint: await Checkpoint.load(join(stateDir, 'state.json'), SOURCE),
    log: silentLogger,
    debug: false,
    multiAppend,
    ...(maxAppendBytes === undefined ? {} : { maxAppendBytes }),
  });
}

const fresh = (): Promise<string> => mkdtemp(join(tmpdir(), 'mf-imap-sink-'));
const noRecent = (flags: ReadonlySet<string>): Set<string> => new Set([...flags].filter((f) => f !== '\\Recent'));

async function collectFps(it: AsyncIterable<Fingerprint>): Promise<Fingerprint[]> {
  const out: Fingerprint[] = [];
  for await (const f of it) out.push(f);
  return out;
}

/** What the pipeline computes for a source message: header block (LF) and wire size. */
const sourceKey = (body: Buffer): string => fingerprintKey(toLf(headerBlock(body)), lfToCrlf(body).length);

describe('Sink contract: imap append', { skip: dc.skip }, () => {
  // Byte-exact commits with flags and dates, in both modes, are sink.test.ts's first case.
  for (const multi of [true, false]) {
    test(`MULTIAPPEND is decided at the first connection: used when the target offers it, unless turned off (${multi ? 'on' : 'off'})`, async () => {
      const sink = await makeSink(await fresh(), target.password, 'plain', undefined, multi);
      assert.equal(sink.multi, false, 'not known before a connection');
      const m = box(multi ? 'Projects/Client A' : 'Projects/Client B');
      const folder = await sink.open(m);
      const tx = await folder.begin();
      for (const x of messages(m)) await tx.write(x.meta, x.body);
      await tx.commit();
      assert.equal(sink.multi, multi, 'Dovecot offers MULTIAPPEND');
      await sink.close();
      assert.equal((await fetchAll(dc.server, target, m.path)).length, 4);
    });
  }

  for (const multi of [true, false]) {
    test(`a 20 MB streamed message goes from a spool file, byte-exact and in order between buffered ones; the spool is removed (${multi ? 'MULTIAPPEND' : 'one APPEND each'})`, async () => {
      const spoolRoot = await fresh();
      await withTmpdir(spoolRoot, async () => {
        const sink = await makeSink(await fresh(), target.password, 'plain', undefined, multi);
        const m = box(multi ? 'Big/Multi' : 'Big/Single');
        const folder = await sink.open(m);
        // LF line ends (as a Maildir source streams them), cut at odd places: the literal is the CRLF form.
        const line = 'x'.repeat(75) + '\n';
        const lf = Buffer.from(`Subject: twenty megabytes\nMessage-ID: <big@x>\n\n${line.repeat(Math.ceil((20 << 20) / line.length))}`, 'latin1');
        const chunks: Buffer[] = [];
        for (let i = 0; i < lf.length; i += 65_537) chunks.push(lf.subarray(i, i + 65_537));
        const small = messages(m);
        const tx = await folder.begin();
        const first = small[0] as (typeof small)[number];
        const last = small[1] as (typeof small)[number];
        await tx.write(first.meta, first.body);
        await tx.write({ mailbox: m, id: '10', size: lf.length, flags: new Set(['\\Seen']), internalDate: new Date(Date.UTC(2021, 5, 6)) }, Readable.from(chunks));
        await tx.write({ ...last.meta, id: '11' }, last.body);
        await tx.commit();
        assert.deepEqual([...folder.known].sort(), ['1', '10', '11']);
        await sink.close();
        const back = await fetchAll(dc.server, target, multi ? 'Big/Multi' : 'Big/Single');
        assert.equal(back.length, 3);
        const wire = lfToCrlf(lf);
        assert.ok(wire.length > 20 << 20);
        assert.ok(back[0]?.raw.equals(first.body), 'the buffered message before it is first');
        assert.ok(back[1]?.raw.equals(wire), 'the streamed message, byte-exact in CRLF form');
        assert.deepEqual(noRecent(back[1]?.flags ?? new Set()), new Set(['\\Seen']));
        assert.equal(back[1]?.internalDate.getTime(), Date.UTC(2021, 5, 6));
        assert.ok(back[2]?.raw.equals(last.body), 'the buffered message after it is last');
        assert.deepEqual((await readdir(spoolRoot)).filter((f) => f.startsWith('mailferry-spool-')), [], 'no spool file left');
        assert.ok((await readdir(spoolRoot)).length > 0, 'TMPDIR was used (the state directory is there)');
      });
    });
  }

  // The largest message, from the provider's profile or announced by the server (APPENDLIMIT,
  // RFC 7889; Dovecot announces none, so its connection's capability is set as if it had).
  for (const [multi, by] of [[true, 'profile'], [false, 'profile'], [true, 'server'], [false, 'server']] as const) {
    test(`the largest message the target takes (${by === 'profile' ? "profile's limits.maxAppendBytes" : 'announced APPENDLIMIT'}): a larger one is refused as a message error before it is sent or spooled, the others go (${multi ? 'MULTIAPPEND' : 'one APPEND each'})`, async () => {
      const spoolRoot = await fresh();
      await withTmpdir(spoolRoot, async () => {
        const sink = await makeSink(await fresh(), target.password, 'plain', undefined, multi, by === 'profile' ? 5_000 : 50_000);
        if (by === 'server') await sink.withConn(async (c) => void c.client.capabilities.set('APPENDLIMIT', 5_000));
        const name = `Limit/${by}-${multi ? 'Multi' : 'Single'}`;
        const m = box(name);
        const folder = await sink.open(m);
        const small = Buffer.from('Subject: small\r\nMessage-ID: <small@x>\r\n\r\nfits\r\n');
        const big = Buffer.from(`Subject: big\r\nMessage-ID: <big@x>\r\n\r\n${'z'.repeat(6_000)}\r\n`);
        const tx = await folder.begin();
        await tx.write({ mailbox: m, id: '1', size: small.length, flags: new Set() }, small);
        const why = by === 'profile' ? /5000 bytes the target's provider takes/ : /5000 bytes the target announces \(APPENDLIMIT\)/;
        const refused = (e: unknown): boolean => e instanceof MailferryError && e.kind === 'message' && why.test(e.message);
        await assert.rejects(tx.write({ mailbox: m, id: '2', size: big.length, flags: new Set() }, big), refused);
        // Streamed and announced too large: drained, never spooled.
        const streamed = Readable.from([big]);
        await assert.rejects(tx.write({ mailbox: m, id: '3', size: big.length, flags: new Set() }, streamed), refused);
        await finished(streamed, { signal: AbortSignal.timeout(5_000) }); // the refused stream is drained
        assert.equal(streamed.readableEnded, true);
        // Streamed with a size that understates it: refused once spooled, before sending.
        await assert.rejects(tx.write({ mailbox: m, id: '4', size: 100, flags: new Set() }, Readable.from([big])), refused);
        await tx.write({ mailbox: m, id: '5', size: small.length, flags: new Set() }, Buffer.from(small.toString().replace('<small@x>', '<small2@x>')));
        await tx.commit();
        assert.deepEqual([...folder.known].sort(), ['1', '5']);
        await sink.close();
        const back = await fetchAll(dc.server, target, name);
        assert.deepEqual(back.map((b) => /Message-ID: (<[^>]+>)/.exec(b.raw.toString())?.[1]), ['<small@x>', '<small2@x>']);
        assert.deepEqual((await readdir(spoolRoot)).filter((f) => f.startsWith('mailferry-spool-')), []);
      });
    });
  }

  test('a streamed message goes through the spool: a temporary directory that cannot be written is a destination error', async () => {
    const sink = await makeSink(await fresh());
    const m = box('NoSpool');
    const folder = await sink.open(m);
    try {
      await withTmpdir(join(await fresh(), 'missing'), async () => {
        const tx = await folder.begin();
        const body = Readable.from([Buffer.from('Subject: s\r\n\r\nbody\r\n')]);
        await assert.rejects(tx.write({ mailbox: m, id: '1', size: 21, flags: new Set() }, body), (e: unknown) => e instanceof MailferryError && e.kind === 'destination' && /TMPDIR/.test(e.message));
        await tx.abort();
      });
    } finally {
      await sink.close();
    }
  });

  test('a stream longer than announced is a message error', async () => {
    const sink = await makeSink(await fresh());
    const m = box('Liar');
    const folder = await sink.open(m);
    const tx = await folder.begin();
    const body = Readable.from([Buffer.alloc(100 * 1024, 0x61)]);
    await assert.rejects(tx.write({ mailbox: m, id: '1', size: 10, flags: new Set() }, body), (e: unknown) => e instanceof MailferryError && e.kind === 'message');
    await sink.close();
  });

  test('reopen knows exactly the committed ids', async () => {
    const state = await fresh();
    const m = box('Reopen');
    let sink = await makeSink(state);
    let folder = await sink.open(m);
    const [a, b] = messages(m);
    let tx = await folder.begin();
    await tx.write(a!.meta, a!.body);
    await tx.commit();
    tx = await folder.begin();
    await tx.write(b!.meta, b!.body);
    await tx.commit();
    await sink.close();
    sink = await makeSink(state);
    folder = await sink.open(m);
    assert.equal(folder.needsRematch, false);
    assert.deepEqual([...folder.known].sort(), ['1', '2']);
    await sink.close();
  });

  test('a crash between APPEND and checkpoint asks for a re-match that finds the message', async () => {
    const state = await fresh();
    const m = box('Crash');
    // One APPEND per write, so that the write alone puts the message on the target.
    let sink = await makeSink(state, target.password, 'plain', undefined, false);
    let folder = await sink.open(m);
    const [a, b] = messages(m);
    let tx = await folder.begin();
    await tx.write(a!.meta, a!.body);
    await tx.commit();
    tx = await folder.begin();
    await tx.write(b!.meta, b!.body);
    await sink.close(); // no commit: as if killed after the APPEND
    sink = await makeSink(state);
    folder = await sink.open(m);
    assert.equal(folder.needsRematch, true);
    // The committed message's record still holds (its target UID is there): it stays known and is
    // not offered for matching; only the message nothing accounts for is.
    assert.deepEqual([...folder.known], ['1']);
    const fps = await collectFps(folder.fingerprints());
    assert.deepEqual(
      fps.map((f) => f.key),
      [sourceKey(b!.body)],
      'fingerprints match the source key',
    );
    await folder.rebase(7n, [{ id: '2', ref: fps[0]!.ref }]);
    assert.deepEqual([...folder.known].sort(), ['1', '2']);
    await sink.close();
    sink = await makeSink(state);
    folder = await sink.open(m);
    assert.equal(folder.needsRematch, false);
    assert.deepEqual([...folder.known].sort(), ['1', '2']);
    await sink.close();
    assert.equal((await fetchAll(dc.server, target, 'Crash')).length, 2, 'nothing appended twice');
  });

  test('an aborted message written again in the same run is not appended twice', async () => {
    const sink = await makeSink(await fresh());
    const m = box('Retry');
    const folder = await sink.open(m);
    const [a] = messages(m);
    let tx = await folder.begin();
    await tx.write(a!.meta, a!.body);
    await tx.abort();
    assert.equal(folder.known.size, 0);
    tx = await folder.begin();
    await tx.write(a!.meta, a!.body);
    await tx.commit();
    assert.deepEqual([...folder.known], ['1']);
    await sink.close();
    assert.equal((await fetchAll(dc.server, target, 'Retry')).length, 1);
  });

  test('a changed UIDVALIDITY asks for a re-match; fingerprints and rebase match what is there', async () => {
    const state = await fresh();
    let sink = await makeSink(state);
    const m = box('Revalidated', 7n);
    let folder = await sink.open(m);
    const tx = await folder.begin();
    for (const x of messages(m)) await tx.write(x.meta, x.body);
    await tx.commit();
    await sink.close();
    sink = await makeSink(state);
    folder = await sink.open(box('Revalidated', 8n));
    assert.equal(folder.needsRematch, true);
    const fps = await collectFps(folder.fingerprints());
    assert.equal(fps.length, 4);
    assert.equal(new Set(fps.map((f) => f.ref)).size, 4, 'refs tell target messages apart');
    assert.deepEqual(new Set(fps.map((f) => f.key)), new Set(messages(m).map((x) => sourceKey(x.body))));
    await folder.rebase(8n, [
      { id: '101', ref: fps[0]!.ref },
      { id: '102', ref: fps[1]!.ref },
    ]);
    assert.deepEqual([...folder.known].sort(), ['101', '102']);
    await sink.close();
    sink = await makeSink(state);
    folder = await sink.open(box('Revalidated', 8n));
    assert.equal(folder.needsRematch, false);
    assert.deepEqual([...folder.known].sort(), ['101', '102']);
    await sink.close();
    assert.equal((await fetchAll(dc.server, target, 'Revalidated')).length, 4, 'nothing removed');
  });

  test('a non-empty target the state knows nothing of asks for a re-match', async () => {
    const sink = await makeSink(await fresh());
    const m = box('Prefilled');
    let folder = await sink.open(m);
    const [a] = messages(m);
    const tx = await folder.begin();
    await tx.write(a!.meta, a!.body);
    await tx.commit();
    await sink.close();
    const other = await makeSink(await fresh());
    folder = await other.open(m);
    assert.equal(folder.needsRematch, true);
    assert.equal(folder.known.size, 0);
    await other.close();
  });

  test('parallel transactions all land', async () => {
    const sink = await makeSink(await fresh());
    const m = box('Parallel');
    const folder = await sink.open(m);
    await Promise.all(
      [0, 1, 2, 3].map(async (n) => {
        const tx = await folder.begin();
        for (let i = 0; i < 5; i++) {
          const x = msg(m, n * 10 + i, `Subject: ${n}-${i}\r\n\r\nbody ${n} ${i}\r\n`);
          await tx.write(x.meta, x.body);
        }
        await tx.commit();
      }),
    );
    assert.equal(folder.known.size, 20);
    await sink.close();
    const back = await fetchAll(dc.server, target, 'Parallel');
    assert.equal(new Set(back.map((b) => b.raw.toString())).size, 20);
  });

  test('nested, Unicode and \\Noselect folders are created and subscribed', async () => {
    const sink = await makeSink(await fresh());
    await sink.open({ path: 'Deep', delimiter: '.', noSelect: true });
    const paths = ['Deep.Child', 'Ärger.Über uns', 'Ünïcödé 日本'];
    for (const p of paths) {
      const m = box(p, 7n, '.');
      const folder = await sink.open(m);
      const x = msg(m, 1, `Subject: ${p}\r\n\r\ny\r\n`);
      const tx = await folder.begin();
      await tx.write(x.meta, x.body);
      await tx.commit();
    }
    await sink.close();
    for (const p of ['Deep/Child', 'Ärger/Über uns', 'Ünïcödé 日本']) {
      assert.equal((await fetchAll(dc.server, target, p)).length, 1, p);
    }
    const c = await connect(dc.server, target);
    try {
      const subscribed = new Set((await c.list({ statusQuery: {} })).filter((l) => l.subscribed).map((l) => l.path));
      for (const p of ['Deep/Child', 'Ärger/Über uns', 'Ünïcödé 日本']) assert.ok(subscribed.has(p), `${p} subscribed`);
      const deep = (await c.list()).find((l) => l.path === 'Deep');
      assert.ok(deep, 'Deep exists as a parent');
      assert.ok(deep.flags.has('\\Noselect') || deep.flags.has('\\NonExistent'), 'Deep holds no messages');
    } finally {
      await c.logout();
    }
  });

  test('a component holding the target delimiter is a mailbox error', async () => {
    const sink = await makeSink(await fresh());
    await assert.rejects(sink.open(box('a/b.c', 7n, '.')), (e: unknown) => e instanceof MailferryError && e.kind === 'mailbox');
    await sink.close();
  });

  test('over STARTTLS with a verified certificate; the state records the APPENDUIDs', async () => {
    const state = await fresh();
    const sink = await makeSink(state, target.password, 'starttls', await readFile(dc.server.caFile));
    const m = box('Secure');
    const folder = await sink.open(m);
    const [a] = messages(m);
    const tx = await folder.begin();
    await tx.write(a!.meta, a!.body);
    await tx.commit();
    await sink.close();
    const back = await fetchAll(dc.server, target, 'Secure');
    const json = JSON.parse(await readFile(join(state, 'state.json'), 'utf8')) as { folders: Record<string, { uidValidity?: string }> };
    assert.equal(json.folders.Secure?.uidValidity, '7');
    assert.ok(json.folders[targetKey('Secure')]?.uidValidity, 'target UIDVALIDITY recorded');
    assert.match(JSON.stringify(json.folders[targetKey('Secure')]), new RegExp(String(back[0]?.uid)));
    const untrusted = await makeSink(await fresh(), target.password, 'starttls');
    await assert.rejects(untrusted.open(m), (e: unknown) => e instanceof MailferryError && e.kind === 'tls');
    await untrusted.close();
  });

  test('a wrong password is an auth error', async () => {
    const sink = await makeSink(await fresh(), 'wrong');
    await assert.rejects(sink.open(box('INBOX')), (e: unknown) => e instanceof MailferryError && e.kind === 'auth');
    await sink.close();
  });
});
