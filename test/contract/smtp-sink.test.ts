import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailferryError } from '../../src/domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../../src/domain/message.js';
import { fingerprintKey, headerBlock, toLf } from '../../src/formats/fingerprint.js';
import { silentLogger } from '../../src/log/logger.js';
import { SmtpSink } from '../../src/drivers/smtp/sink.js';
import { smtpSender } from '../../src/drivers/smtp/transport.js';
import { Checkpoint } from '../../src/state/checkpoint.js';
import { smtpView, startSmtp, type DataReply, type TestSmtp } from '../helpers/smtp.js';
import { deadPort } from '../helpers/ports.js';
import { archiveSourceKind } from '../helpers/sources.js';
import { runPipeline } from '../../src/pipeline/run.js';

/**
 * What only the SMTP sink does (the contract every Sink keeps is sink.test.ts), against
 * smtp-server on loopback: the envelope and the relay's reply recorded, a message written again
 * not sent twice, fingerprints of a message with a bare LF, 4xx retried and 5xx refused, session
 * failures typed.
 */
const SOURCE = 'imaps://test@127.0.0.1:993';
const box = (path: string, uidValidity = 7n): MailboxInfo => ({ path, delimiter: '/', uidValidity });
const msg = (mailbox: MailboxInfo, id: number, body: string): { meta: MessageMeta; body: Buffer } => ({
  meta: { mailbox, id: String(id), size: Buffer.byteLength(body, 'latin1'), flags: new Set() },
  body: Buffer.from(body, 'latin1'),
});
const messages = (m: MailboxInfo) => [
  msg(m, 1, 'Subject: one\r\nMessage-ID: <1@x>\r\n\r\n.leading dot\r\n..two\r\n.\r\n'),
  msg(m, 2, 'Subject: two\r\n\r\nno final newline'),
  msg(m, 3, 'Subject: 8bit \xe9\xff\r\n\r\nbare\nlf and lone\rcr\r\n'),
];

describe('SMTP sink', () => {
  let dir = '';
  let relay: TestSmtp;
  let script: (n: number, data: Buffer) => DataReply = () => undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mf-smtp-sink-'));
    relay = await startSmtp({ mode: 'tls', onData: (n, d) => script(n, d) });
  });
  after(async () => {
    await relay.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function make(state: string): Promise<SmtpSink> {
    const sender = smtpSender({
      endpoint: { kind: 'smtp', user: '', host: '127.0.0.1', port: relay.port, tls: 'tls' },
      ca: await readFile(relay.caFile),
      insecure: false,
      log: silentLogger,
      debug: false,
    });
    return new SmtpSink({
      sender,
      envelope: { from: 'me@example.org', to: 'you@example.org' },
      checkpoint: await Checkpoint.load(join(dir, state), SOURCE),
      name: 'test relay',
      retries: 3,
      retryBaseMs: 10,
      signal: new AbortController().signal,
      log: silentLogger,
    });
  }

  test('a write is sent once, recorded with the reply; a reopened sink knows it', async () => {
    const start = relay.received.length;
    const sink = await make('a.json');
    const m = box('INBOX');
    const folder = await sink.open(m);
    assert.equal(folder.known.size, 0);
    const tx = await folder.begin();
    for (const x of messages(m)) await tx.write(x.meta, x.body);
    await tx.commit();
    assert.deepEqual([...folder.known].sort(), ['1', '2', '3']);
    await sink.close();
    const got = relay.received.slice(start);
    assert.equal(got.length, 3);
    messages(m).forEach((x, i) => assert.ok(got[i]?.data.equals(smtpView(x.body)), `message ${x.meta.id} as sent`));
    assert.ok(got.every((g) => g.from === 'me@example.org' && g.to.join() === 'you@example.org'));

    const state = JSON.parse(await readFile(join(dir, 'a.json'), 'utf8')) as { folders: Record<string, { sent: Record<string, { reply: string }> }> };
    assert.match(state.folders['INBOX']?.sent['2']?.reply ?? '', /^250 Ok: queued as T\d+$/);

    const again = await make('a.json');
    const f2 = await again.open(m);
    assert.deepEqual([...f2.known].sort(), ['1', '2', '3']);
    assert.equal(f2.needsRematch, false);
    // Written again anyway (a retried batch): not sent twice.
    const [one] = messages(m);
    assert.ok(one !== undefined);
    const tx2 = await f2.begin();
    await tx2.write(one.meta, one.body);
    await tx2.commit();
    await again.close();
    assert.equal(relay.received.length, start + 3);
  });

  test('a changed UIDVALIDITY: the recorded fingerprints match the source, nothing is resent', async () => {
    const sink = await make('c.json');
    const old = box('INBOX', 7n);
    const folder = await sink.open(old);
    const tx = await folder.begin();
    for (const x of messages(old)) await tx.write(x.meta, x.body);
    await sink.close();

    const again = await make('c.json');
    const renewed = box('INBOX', 8n);
    const f2 = await again.open(renewed);
    assert.equal(f2.needsRematch, true);
    assert.equal(f2.known.size, 0);
    const fps = [];
    for await (const fp of f2.fingerprints()) fps.push(fp);
    // The key the pipeline computes from the source's headers(): header block in LF form and the
    // size of the bytes the source hands over (a bare LF counted as the source counts it, once).
    for (const x of messages(old)) {
      assert.ok(fps.some((fp) => fp.ref === x.meta.id && fp.key === fingerprintKey(toLf(headerBlock(x.body)), x.body.length)), `fingerprint of ${x.meta.id}`);
    }
    // The source now numbers them 101..103.
    await f2.rebase(8n, fps.map((fp) => ({ id: String(Number(fp.ref) + 100), ref: fp.ref })));
    assert.deepEqual([...f2.known].sort(), ['101', '102', '103']);
    await again.close();
    const third = await make('c.json');
    assert.deepEqual([...(await third.open(renewed)).known].sort(), ['101', '102', '103']);
    await third.close();
  });

  test('4xx is retried; 5xx is skipped with the reason and not recorded', async () => {
    const sink = await make('d.json');
    const m = box('INBOX');
    const folder = await sink.open(m);
    const first = relay.attempts;
    let deferred = 0;
    script = (_, data) => {
      const text = data.toString('latin1');
      if (text.includes('Subject: one') && deferred++ < 2) return { code: 451, message: '4.7.1 slow down' };
      if (text.includes('Subject: two')) return { code: 550, message: '5.7.1 not wanted' };
      return undefined;
    };
    const tx = await folder.begin();
    try {
      for (const x of messages(m)) await tx.write(x.meta, x.body);
      await tx.commit();
    } finally {
      script = () => undefined;
    }
    await sink.close();
    assert.equal(relay.attempts - first, 5, 'one: 3 tries; two: 1; three: 1');
    assert.deepEqual([...folder.known].sort(), ['1', '3']);
    assert.equal(sink.forwarded, 2);
    // Reported the one way every sink reports a refusal: tx.refused(), read by the pipeline.
    const refused = tx.refused?.() ?? [];
    assert.deepEqual(refused.map((r) => r.id), ['2']);
    assert.match(refused[0]?.reason ?? '', /relay refused it: 550 5\.7\.1 not wanted/);
  });

  test('session failures are typed by the one net-error mapper: refused and untrusted stop, a dropped session is retryable', async () => {
    const sender = (port: number, ca?: Buffer) =>
      smtpSender({ endpoint: { kind: 'smtp', user: '', host: '127.0.0.1', port, tls: 'tls' }, ...(ca === undefined ? {} : { ca }), insecure: false, log: silentLogger, debug: false });
    const env = { from: 'me@example.org', to: 'you@example.org' };
    const raw = Buffer.from('Subject: s\r\n\r\nbody\r\n');
    const is = (kind: string, retryable: boolean, text: RegExp) => (e: unknown): boolean =>
      e instanceof MailferryError && e.kind === kind && e.retryable === retryable && text.test(e.message);
    const closed = sender(await deadPort());
    await assert.rejects(closed.send(env, raw), is('network', false, /connection refused by smtps:\/\/127\.0\.0\.1:\d+/));
    closed.close();
    const untrusted = sender(relay.port);
    await assert.rejects(untrusted.send(env, raw), is('tls', false, /not trusted \(\w+\); use --smtp-ca FILE/));
    untrusted.close();
    const dropping = sender(relay.port, await readFile(relay.caFile));
    script = () => 'drop';
    try {
      await assert.rejects(dropping.send(env, raw), is('network', true, /lost/));
    } finally {
      script = () => undefined;
      dropping.close();
    }
  });

  test('through the pipeline: a refusal reaches the run report once, also when the batch is retried after a dropped connection', async () => {
    const raw = (n: number): Buffer => Buffer.from(`Subject: p${n}\r\nMessage-ID: <p${n}@x>\r\n\r\nbody ${n}\r\n`);
    const archive = archiveSourceKind('maildir', [1, 2, 3].map((n) => ({ raw: raw(n), flags: [], date: new Date(Date.UTC(2020, 0, n)) })), 1 << 20);
    await archive.prepare?.();
    const sink = await make('p.json');
    let dropped = false;
    script = (_, data) => {
      if (data.includes('Subject: p1')) return { code: 550, message: '5.7.1 not wanted' };
      if (data.includes('Subject: p2') && !dropped) {
        dropped = true;
        return 'drop';
      }
      return undefined;
    };
    try {
      const report = await runPipeline(archive.make(), [sink], {
        include: [],
        exclude: [],
        batchBytes: 1 << 20,
        batchMessages: 100,
        retries: 3,
        retryBaseMs: 10,
        signal: new AbortController().signal,
        log: silentLogger,
      });
      assert.ok(dropped, 'the connection was dropped once');
      assert.equal(sink.forwarded, 2);
      for (const n of [2, 3]) assert.equal(relay.received.filter((r) => r.data.includes(`Subject: p${n}`)).length, 1, `p${n} delivered once`);
      assert.deepEqual(report.skipped.map((x) => [x.mailbox, x.reason.replace(/:.*/, '')]), [['INBOX', 'relay refused it']]);
    } finally {
      script = () => undefined;
      await sink.close();
      await archive.cleanup?.();
    }
  });
});
