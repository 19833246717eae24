import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { passwordCredentials } from '../../src/auth/credentials.js';
import type { MailboxInfo } from '../../src/domain/message.js';
import { silentLogger, type Logger } from '../../src/log/logger.js';
import { ImapAppendSink, targetKey } from '../../src/drivers/imap/target.js';
import type { SinkFolder } from '../../src/sinks/sink.js';
import { Checkpoint } from '../../src/state/checkpoint.js';
import { runPipeline } from '../../src/pipeline/run.js';
import { ImapSource } from '../../src/drivers/imap/source.js';
import type { Selected } from '../../src/sources/source.js';
import { SourceWrapper } from '../../src/sources/wrapper.js';
import { connect, fetchAll, withDovecot, type Account } from '../helpers/server.js';

/**
 * `removeGone` of the IMAP target (expunge.ts, `--sync-deletions`), called directly against a
 * real Dovecot user: what it removes, what it never touches, and when it removes nothing at all.
 */
const gina: Account = { name: 'expunge-gina', password: 'expunge-gina-pw' };
const dc = withDovecot({ users: [gina], seed: [{ path: 'Moving', messages: [1, 2, 3].map((n) => ({ raw: body(n) })) }] });

/** Warnings logged, for the assertions; the rest dropped. */
function capture(): { log: Logger; warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, log: { debug() {}, info() {}, warn: (m) => void warnings.push(m), error() {} } };
}

async function openSink(log: Logger): Promise<ImapAppendSink> {
  const s = dc.server;
  const dir = await mkdtemp(join(tmpdir(), 'mf-expunge-'));
  return new ImapAppendSink({
    endpoint: { kind: 'imap', user: gina.name, host: s.host, port: s.imapPort, tls: 'plain' },
    credentials: passwordCredentials(gina.password),
    insecure: false,
    connections: 1,
    checkpoint: await Checkpoint.load(join(dir, 'state.json'), 'imap://source@example.org:143'),
    log,
    debug: false,
  });
}

/** Run `fn` with a fresh sink (closed after) and the warnings it logs. */
async function withSink(fn: (sink: ImapAppendSink, warnings: string[]) => Promise<void>): Promise<void> {
  const { log, warnings } = capture();
  const sink = await openSink(log);
  try {
    await fn(sink, warnings);
  } finally {
    await sink.close();
  }
}

const box = (path: string): MailboxInfo => ({ path, delimiter: '/', uidValidity: 11n });
function body(n: number): Buffer {
  return Buffer.from(`Subject: s${n}\r\nMessage-ID: <${n}@expunge.test>\r\n\r\nbody ${n}\r\n`);
}

/** Open `path` on the target and commit messages 1..n (message 3 flagged \Deleted, as a source may have it). */
async function filled(sink: ImapAppendSink, path: string, n: number): Promise<SinkFolder> {
  const folder = await sink.open(box(path));
  const tx = await folder.begin();
  for (let i = 1; i <= n; i++) {
    await tx.write({ mailbox: box(path), id: String(i), size: body(i).length, flags: new Set(i === 3 ? ['\\Deleted'] : []) }, body(i));
  }
  await tx.commit();
  return folder;
}

const subjects = async (path: string): Promise<string[]> =>
  (await fetchAll(dc.server, gina, path)).map((m) => /^Subject: (\S+)/m.exec(m.raw.toString('latin1'))?.[1] ?? '?').sort();

describe('IMAP target removeGone (--sync-deletions)', { skip: dc.skip }, () => {
  test('removes exactly the recorded UIDs of ids no longer present; a target-only message, a message without a recorded UID and \\Deleted ones stay', () =>
    withSink(async (sink, warnings) => {
      const folder = await filled(sink, 'Gone', 5);
      const c = await connect(dc.server, gina);
      await c.append('Gone', body(9), ['\\Deleted']).finally(() => c.logout());
      // As if message 4 had been appended without APPENDUID: which target message it is, is not known.
      sink.checkpoint.update('Gone', (f) => f.targetUids?.delete('4'));
      const uidOf5 = sink.checkpoint.folder('Gone')?.targetUids?.get('5');

      assert.equal(await folder.removeGone?.(new Set(['1', '3'])), 2);
      assert.deepEqual(await subjects('Gone'), ['s1', 's3', 's4', 's9']);
      assert.deepEqual([...folder.known].sort(), ['1', '3', '4']);
      const cp = sink.checkpoint.folder('Gone');
      assert.deepEqual([...(cp?.ids ?? [])].sort(), ['1', '3', '4']);
      assert.deepEqual([...(cp?.targetUids?.keys() ?? [])].sort(), ['1', '3']);
      assert.equal(sink.checkpoint.folder(targetKey('Gone'))?.ids.has(String(uidOf5)), false);
      assert.equal(await folder.removeGone?.(new Set(['1', '3'])), 0, 'nothing left to remove');
      assert.deepEqual(warnings, []);
    }));

  test('a target without UIDPLUS: nothing removed, one warning for the run', () =>
    withSink(async (sink, warnings) => {
      const a = await filled(sink, 'NoPlusA', 2);
      const b = await filled(sink, 'NoPlusB', 2);
      // The one pooled connection, as a server without UIDPLUS would have it (Dovecot always offers it).
      await sink.withConn(async (conn) => void conn.client.capabilities.delete('UIDPLUS'));
      assert.equal(await a.removeGone?.(new Set()), 0);
      assert.equal(await b.removeGone?.(new Set()), 0);
      assert.deepEqual(await subjects('NoPlusA'), ['s1', 's2']);
      assert.deepEqual(await subjects('NoPlusB'), ['s1', 's2']);
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0] ?? '', /does not offer UIDPLUS/);
      assert.equal(sink.checkpoint.folder('NoPlusA')?.ids.size, 2, 'state unchanged');
    }));

  test('a target folder recreated since it was opened (UIDVALIDITY changed): nothing removed', () =>
    withSink(async (sink, warnings) => {
      const folder = await filled(sink, 'Recreated', 2);
      const c = await connect(dc.server, gina);
      try {
        await c.mailboxDelete('Recreated');
        await c.mailboxCreate('Recreated');
        await c.append('Recreated', body(1));
      } finally {
        await c.logout();
      }
      assert.equal(await folder.removeGone?.(new Set()), 0);
      assert.deepEqual(await subjects('Recreated'), ['s1']);
      assert.match(warnings.join('\n'), /recreated/);
    }));
});

describe('the pipeline with syncDeletions', { skip: dc.skip }, () => {
  const source = (): ImapSource =>
    new ImapSource({
      endpoint: { kind: 'imap', user: dc.alice.name, host: dc.server.host, port: dc.server.imapPort, tls: 'plain' },
      credentials: passwordCredentials(dc.alice.password),
      insecure: false,
      connections: 1,
      streamThreshold: 1 << 20,
      log: silentLogger,
      debug: false,
    });

  /**
   * SELECT on one connection, the listing on another (as a source's pool may do), and a message
   * arrives in between: the listing holds one more than the count.
   */
  class ArrivingSource extends SourceWrapper {
    constructor(
      inner: ImapSource,
      private readonly other: ImapSource,
    ) {
      super(inner);
    }
    override async select(mailbox: MailboxInfo): Promise<Selected> {
      const selected = await this.other.select(mailbox);
      const c = await connect(dc.server, dc.alice);
      await c.append(mailbox.path, body(4)).finally(() => c.logout());
      return selected;
    }
    override async close(): Promise<void> {
      await this.other.close();
      await super.close();
    }
  }

  test('a folder that changed while it was listed keeps everything this run ("carried next run"); the next run removes', async () => {
    const infos: string[] = [];
    const { log } = capture();
    const sink = await openSink({ ...log, info: (m) => void infos.push(m) });
    const run = async (s: ImapSource | SourceWrapper) =>
      runPipeline(s, [sink], {
        include: ['Moving'],
        exclude: [],
        batchBytes: 1 << 20,
        batchMessages: 100,
        retries: 0,
        retryBaseMs: 10,
        signal: new AbortController().signal,
        log: { ...log, info: (m) => void infos.push(m) },
        syncDeletions: true,
      }).finally(() => s.close());
    try {
      assert.equal((await run(source())).messages, 3);
      const c = await connect(dc.server, dc.alice);
      try {
        await c.mailboxOpen('Moving');
        assert.equal(await c.messageDelete('1', { uid: true }), true);
      } finally {
        await c.logout();
      }
      const changed = await run(new ArrivingSource(source(), source()));
      assert.equal(changed.removed, 0, infos.join("\n"));
      assert.equal(changed.messages, 1, 'the message that arrived is copied');
      assert.match(infos.join('\n'), /Moving: 2 messages selected, 3 listed/);
      assert.match(infos.join('\n'), /deletions carried next run/);
      assert.deepEqual(await subjects('Moving'), ['s1', 's2', 's3', 's4']);
      const next = await run(source());
      assert.equal(next.removed, 1);
      assert.deepEqual(await subjects('Moving'), ['s2', 's3', 's4']);
    } finally {
      await sink.close();
    }
  });
});
