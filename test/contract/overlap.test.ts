import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MailboxInfo, MessageMeta } from '../../src/domain/message.js';
import { MaildirSink } from '../../src/drivers/maildir/sink.js';
import { silentLogger } from '../../src/log/logger.js';
import { runPipeline } from '../../src/pipeline/run.js';
import type { Sink, SinkFolder, Tx } from '../../src/sinks/sink.js';
import type { Fetched, HeaderSample, Missing, Selected, Source } from '../../src/sources/source.js';
import { Checkpoint } from '../../src/state/checkpoint.js';
import { STATE_FILE } from '../../src/commands/archive.js';

/**
 * Overlap (issue 21): while a batch commits (fsyncs, renames), the next batch fetches on the
 * connection the first gave back, and the source is never used by more than `caps.parallel`
 * fetches at once. A Source fixture with one connection (the contract, no protocol) counts its
 * uses; the real Maildir sink is wrapped so that each commit takes COMMIT_MS longer, and records
 * whether the source was in use or began a use meanwhile. Before the change a commit held the
 * only slot, so nothing else could use the source while one ran.
 */
const COMMIT_MS = 250;
const BOXES: MailboxInfo[] = [
  { path: 'INBOX', delimiter: '/' },
  { path: 'Later', delimiter: '/' },
];
const IDS = ['1', '2', '3', '4'];
const bodyOf = (path: string, id: string): Buffer => Buffer.from(`Subject: ${path} ${id}\r\nMessage-ID: <${id}.${path}@x>\r\n\r\nbody ${id}\r\n`);

class CountingSource implements Source {
  readonly caps = { parallel: 1 };
  readonly identity = 'imaps://alice@example.org:993';
  active = 0;
  most = 0;
  /** Fetches and listings begun so far. */
  uses = 0;
  mailboxes(): Promise<MailboxInfo[]> {
    return Promise.resolve(BOXES);
  }
  select(mailbox: MailboxInfo): Promise<Selected> {
    return Promise.resolve({ mailbox: { ...mailbox, uidValidity: 9n }, count: IDS.length });
  }
  async *list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta> {
    this.begin();
    try {
      for (const id of IDS) if (wanted(id)) yield { mailbox, id, size: bodyOf(mailbox.path, id).length, flags: new Set(), internalDate: new Date(Date.UTC(2022, 0, Number(id))) };
    } finally {
      this.active--;
    }
  }
  async *headers(): AsyncIterable<HeaderSample> {
    // never asked: no re-match here
  }
  async *fetch(batch: readonly MessageMeta[]): AsyncIterable<Fetched> {
    this.begin();
    try {
      await new Promise((r) => setTimeout(r, 5));
      for (const meta of batch) yield { meta, body: bodyOf(meta.mailbox.path, meta.id) };
    } finally {
      this.active--;
    }
  }
  private begin(): void {
    this.active++;
    this.most = Math.max(this.most, this.active);
    this.uses++;
  }
  missing(): Promise<Missing> {
    return Promise.resolve({ gone: new Set<string>() });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The real Maildir sink whose commits take COMMIT_MS longer; each records whether the source was used meanwhile. */
function slowSink(inner: Sink, source: CountingSource, overlapped: boolean[]): Sink {
  const wrapTx = (tx: Tx): Tx => ({
    write: (m, b) => tx.write(m, b),
    abort: () => tx.abort(),
    commit: async () => {
      const uses = source.uses;
      const busy = source.active > 0;
      await new Promise((r) => setTimeout(r, COMMIT_MS));
      overlapped.push(busy || source.uses > uses);
      await tx.commit();
    },
  });
  const wrapFolder = (f: SinkFolder): SinkFolder => ({
    get mailbox() {
      return f.mailbox;
    },
    get known() {
      return f.known;
    },
    get needsRematch() {
      return f.needsRematch;
    },
    fingerprints: () => f.fingerprints(),
    rebase: (v, m) => f.rebase(v, m),
    begin: async () => wrapTx(await f.begin()),
  });
  return {
    name: inner.name,
    open: async (m) => wrapFolder(await inner.open(m)),
    close: () => inner.close(),
  };
}

describe('the pipeline overlaps a commit with the next fetch', () => {
  test('one connection: commits overlap uses of the source; never two uses at once; every message archived', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mf-overlap-'));
    try {
      const source = new CountingSource();
      const cp = await Checkpoint.load(join(root, STATE_FILE), source.identity);
      const overlapped: boolean[] = [];
      const sink = slowSink(new MaildirSink(root, 'maildir++', cp, silentLogger), source, overlapped);
      const report = await runPipeline(source, [sink], {
        include: [],
        exclude: [],
        batchBytes: 1 << 20,
        batchMessages: 1,
        retries: 1,
        retryBaseMs: 10,
        signal: new AbortController().signal,
        log: silentLogger,
      });
      assert.equal(report.messages, IDS.length * BOXES.length);
      assert.equal(source.most, 1, 'never more fetches at once than caps.parallel');
      assert.equal(overlapped.length, IDS.length * BOXES.length);
      // The first commit always has the next batch to overlap with; later ones do while a slot is
      // free (a batch whose commit runs long keeps its slot: with both slots committing, the source
      // waits, which a loaded machine's fsyncs can make happen). Before the change: none.
      const shown = `source used during each commit: ${overlapped.map(String).join(' ')}`;
      assert.equal(overlapped[0], true, shown);
      assert.ok(overlapped.filter((o) => o).length >= overlapped.length / 2, shown);
      assert.equal((await readdir(join(root, 'new'))).length + (await readdir(join(root, 'cur'))).length, IDS.length);
      assert.equal((await readdir(join(root, '.Later', 'new'))).length + (await readdir(join(root, '.Later', 'cur'))).length, IDS.length);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
