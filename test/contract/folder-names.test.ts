import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATE_FILE } from '../../src/commands/archive.js';
import type { MailboxInfo, MessageMeta } from '../../src/domain/message.js';
import { MaildirSink } from '../../src/drivers/maildir/sink.js';
import { MaildirSource } from '../../src/drivers/maildir/source.js';
import { MboxSink } from '../../src/drivers/mbox/sink.js';
import { MboxSource } from '../../src/drivers/mbox/source.js';
import { silentLogger } from '../../src/log/logger.js';
import { readBack as readBackBy } from '../helpers/archive.js';
import { foldClashes } from '../helpers/fold-clashes.js';
import { runPipeline } from '../../src/pipeline/run.js';
import type { Sink } from '../../src/sinks/sink.js';
import type { Fetched, HeaderSample, Missing, Selected, Source } from '../../src/sources/source.js';
import { Checkpoint } from '../../src/state/checkpoint.js';

/**
 * Folder names that would share one place on disk, from a source no Dovecot can play (Dovecot
 * folds `Inbox/x` into `INBOX/x` and has one delimiter): a direct Source fixture. Each archive
 * format and layout is written by the real sinks through the pipeline, read back by the archive's
 * own Source, and must give every folder back, under its name and delimiter, with its messages.
 */
const SOURCE = 'imaps://alice@example.org:993';

const FOLDERS: MailboxInfo[] = [
  { path: 'INBOX', delimiter: '/' },
  { path: 'INBOX/x', delimiter: '/' },
  { path: 'Inbox/x', delimiter: '/' },
  { path: 'a/b', delimiter: '/' },
  { path: 'a.b', delimiter: '.' },
  { path: 'x', delimiter: '/' },
  { path: 'x/y', delimiter: '/' },
  { path: 'x.sbd', delimiter: '/' },
  { path: 'Caf\u00e9', delimiter: '/' },
  { path: 'Cafe\u0301', delimiter: '/' },
  { path: 'Work', delimiter: '/' },
  { path: 'work', delimiter: '/' },
  { path: 'cur', delimiter: '/' },
  { path: 'new', delimiter: '/' },
  { path: 'tmp', delimiter: '/' },
  { path: 'b/INBOX', delimiter: '/' },
  { path: 'mailferry-state/json', delimiter: '/' },
];

const bodyOf = (path: string, i: number): Buffer =>
  Buffer.from(`Subject: ${encodeURIComponent(path)} ${i}\r\nMessage-ID: <${i}.${encodeURIComponent(path)}@x>\r\n\r\nin ${path}\r\n`, 'utf8');

/** Two messages per folder, each naming its folder. */
class FixtureSource implements Source {
  readonly caps = { parallel: 1 };
  readonly identity = SOURCE;
  constructor(private readonly folders: MailboxInfo[] = FOLDERS) {}
  mailboxes(): Promise<MailboxInfo[]> {
    return Promise.resolve(this.folders);
  }
  select(mailbox: MailboxInfo): Promise<Selected> {
    return Promise.resolve({ mailbox: { ...mailbox, uidValidity: 5n }, count: 2 });
  }
  async *list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta> {
    for (const id of ['1', '2']) {
      if (wanted(id)) yield { mailbox, id, size: bodyOf(mailbox.path, Number(id)).length, flags: new Set(['\\Seen']), internalDate: new Date(Date.UTC(2021, 1, Number(id))) };
    }
  }
  async *headers(): AsyncIterable<HeaderSample> {
    // never asked: the archive never needs a re-match here
  }
  async *fetch(batch: readonly MessageMeta[]): AsyncIterable<Fetched> {
    for (const meta of batch) yield { meta, body: bodyOf(meta.mailbox.path, Number(meta.id)) };
  }
  /** Never asked: fetch yields every message it is asked for. Whatever it were asked is still there. */
  missing(): Promise<Missing> {
    return Promise.resolve({ gone: new Set<string>() });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const run = (sink: Sink, folders = FOLDERS) =>
  runPipeline(new FixtureSource(folders), [sink], {
    include: [],
    exclude: [],
    batchBytes: 1 << 20,
    batchMessages: 100,
    retries: 0,
    retryBaseMs: 10,
    signal: new AbortController().signal,
    log: silentLogger,
  });

/** Folder (path and delimiter) -> its message bodies, read back through the archive's Source. */
const readBack = (source: Source): Promise<Map<string, string[]>> => readBackBy(source, (m) => `${m.path} (${m.delimiter})`);

const want = new Map(FOLDERS.map((f) => [`${f.path} (${f.delimiter})`, [bodyOf(f.path, 1), bodyOf(f.path, 2)].map((b) => b.toString('utf8')).sort()]));

const kinds = [
  { name: 'Maildir++', sink: (root: string, cp: Checkpoint) => new MaildirSink(root, 'maildir++', cp, silentLogger), source: (root: string) => new MaildirSource({ root, layout: 'maildir++', streamThreshold: 1 << 20, log: silentLogger }) },
  { name: 'Maildir fs', sink: (root: string, cp: Checkpoint) => new MaildirSink(root, 'fs', cp, silentLogger), source: (root: string) => new MaildirSource({ root, layout: 'fs', streamThreshold: 1 << 20, log: silentLogger }) },
  { name: 'mbox', sink: (root: string, cp: Checkpoint) => new MboxSink(root, cp), source: (root: string) => new MboxSource({ root, streamThreshold: 1 << 20, log: silentLogger }) },
];

describe('folders that would share a place on disk get one each', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  for (const kind of kinds) {
    test(`${kind.name}: every folder back under its name with its messages; a rerun writes nothing`, async () => {
      const root = await mkdtemp(join(tmpdir(), 'mf-names-'));
      dirs.push(root);
      const open = async (): Promise<Sink> => kind.sink(root, await Checkpoint.load(join(root, STATE_FILE), SOURCE));
      const sink = await open();
      const first = await run(sink).finally(() => sink.close());
      assert.deepEqual(first.skipped, []);
      assert.equal(first.messages, FOLDERS.length * 2);
      assert.deepEqual(await foldClashes(root), [], 'no two names a case-insensitive file system would merge');
      assert.deepEqual(await readBack(kind.source(root)), want);
      const again = await open();
      const second = await run(again).finally(() => again.close());
      assert.equal(second.messages, 0, 'a rerun writes nothing');
      assert.equal(second.unchanged, FOLDERS.length * 2);
      assert.deepEqual(await readBack(kind.source(root)), want, 'still the same after the rerun');
    });
  }
});

describe('an archive written before places were recorded', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  test('keeps its names; a folder that shared a place with another gets its own and is copied again', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mf-names-old-'));
    dirs.push(root);
    const open = async (): Promise<Sink> => new MaildirSink(root, 'maildir++', await Checkpoint.load(join(root, STATE_FILE), SOURCE), silentLogger);
    const older = [FOLDERS[0], FOLDERS[1], FOLDERS[11]] as MailboxInfo[]; // INBOX, INBOX/x, work
    const sink = await open();
    await run(sink, older).finally(() => sink.close());
    // As an older version left it: no places, and `Inbox/x` recorded at the place of `INBOX/x`.
    const state = JSON.parse(await readFile(join(root, STATE_FILE), 'utf8')) as { places?: unknown; folders: Record<string, unknown> };
    delete state.places;
    state.folders['Inbox/x'] = state.folders['INBOX/x'];
    await writeFile(join(root, STATE_FILE), JSON.stringify(state));
    const before = (await readdir(root)).filter((n) => n.startsWith('.') && !n.startsWith('.mailferry')).sort();
    assert.deepEqual(before, ['.INBOX.x', '.work']);

    const now = [FOLDERS[0], FOLDERS[1], FOLDERS[2], FOLDERS[10], FOLDERS[11]] as MailboxInfo[]; // + Inbox/x, Work
    const warnings: string[] = [];
    const again = new MaildirSink(root, 'maildir++', await Checkpoint.load(join(root, STATE_FILE), SOURCE), { ...silentLogger, warn: (m) => void warnings.push(m) });
    const report = await run(again, now).finally(() => again.close());
    assert.equal(report.messages, 4, 'Work and Inbox/x, nothing of the folders already archived');
    assert.match(warnings.join('\n'), /Inbox\/x: shared its place in the archive with another folder/);
    const after = (await readdir(root)).filter((n) => n.startsWith('.') && !n.startsWith('.mailferry')).sort();
    assert.deepEqual(after, ['.INBOX.x', '.\\49nbox.x', '.\\57ork', '.work'], 'the older names stay; the new ones are escaped');
    const source = new MaildirSource({ root, layout: 'maildir++', streamThreshold: 1 << 20, log: silentLogger });
    assert.deepEqual(await readBack(source), new Map(now.map((f) => [`${f.path} (${f.delimiter})`, want.get(`${f.path} (${f.delimiter})`)])));
    const third = await open();
    assert.equal((await run(third, now).finally(() => third.close())).messages, 0, 'a rerun writes nothing');
  });
});
