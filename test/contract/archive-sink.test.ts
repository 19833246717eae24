import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, stat, truncate, appendFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { MailboxInfo, MessageMeta } from '../../src/domain/message.js';
import { MaildirSink } from '../../src/drivers/maildir/sink.js';
import { MboxSink } from '../../src/drivers/mbox/sink.js';
import type { Sink } from '../../src/sinks/sink.js';
import { Checkpoint } from '../../src/state/checkpoint.js';
import { STATE_FILE } from '../../src/commands/archive.js';
import { silentLogger } from '../../src/log/logger.js';
import { MailferryError } from '../../src/domain/errors.js';
import { toLf } from '../../src/formats/fingerprint.js';
import { maildirFolderDir, mboxFolderFile } from '../../src/drivers/archive-paths.js';
import { readMaildirFolder, readMboxFile, type ArchivedMessage } from '../helpers/archive.js';

/**
 * What only the local archive sinks do (the contract every Sink keeps is sink.test.ts): a torn
 * write repaired on open, archived messages relabelled by rebase, private modes, a file shortened
 * behind our back, a disk that refuses.
 */
const SOURCE = 'imap://test@127.0.0.1:143';

interface Kind {
  name: string;
  make(root: string): Promise<Sink>;
  read(root: string, mailbox: MailboxInfo): Promise<ArchivedMessage[]>;
  /** Simulate a crash mid-write: bytes the sink never committed. */
  tear(root: string, mailbox: MailboxInfo): Promise<void>;
}

const kinds: Kind[] = [
  {
    name: 'maildir',
    make: async (root) => new MaildirSink(root, 'maildir++', await Checkpoint.load(join(root, STATE_FILE), SOURCE), silentLogger),
    read: (root, m) => readMaildirFolder(maildirFolderDir(root, 'maildir++', m)),
    tear: async (root, m) => {
      const dir = maildirFolderDir(root, 'maildir++', m);
      await writeFile(join(dir, 'tmp', 'torn.partial'), 'From: half a mess');
    },
  },
  {
    name: 'mbox',
    make: async (root) => new MboxSink(root, await Checkpoint.load(join(root, STATE_FILE), SOURCE)),
    read: (root, m) => readMboxFile(mboxFolderFile(root, m), root, m.path, SOURCE),
    tear: async (root, m) => appendFile(mboxFolderFile(root, m), 'From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nStatus: O\nX-Stat'),
  },
];

const box = (path: string, uidValidity = 7n): MailboxInfo => ({ path, delimiter: '/', uidValidity });
const msg = (mailbox: MailboxInfo, id: number, body: string, flags: string[] = [], date = new Date(Date.UTC(2020, 1, id, 10))): { meta: MessageMeta; body: Buffer } => ({
  meta: { mailbox, id: String(id), size: Buffer.byteLength(body), flags: new Set(flags), internalDate: date },
  body: Buffer.from(body, 'latin1'),
});

const messages = (m: MailboxInfo) => [
  msg(m, 1, 'Subject: one\r\nMessage-ID: <1@x>\r\n\r\nFrom the start\r\n>From quoted\r\n.\r\n', ['\\Seen', '$Label1']),
  msg(m, 2, 'Subject: two\r\n\r\nno final newline', ['\\Flagged', '\\Answered', 'project-x']),
  msg(m, 3, 'Subject: empty body\r\n\r\n', ['\\Draft', '\\Deleted']),
  msg(m, 4, 'Subject: 8bit \xe9\xff\r\n\r\nnul\x00byte\r\nbare\nlf\r\n'),
];

for (const kind of kinds) {
  describe(`archive sink: ${kind.name}`, () => {
    const fresh = async (): Promise<string> => mkdtemp(join(tmpdir(), `mf-${kind.name}-`));

    test('bytes a crash left uncommitted in the archive are removed by the next open', async () => {
      const root = await fresh();
      const m = box('INBOX');
      let sink = await kind.make(root);
      let folder = await sink.open(m);
      const [a, , c] = messages(m);
      let tx = await folder.begin();
      await tx.write(a!.meta, a!.body);
      await tx.commit();
      tx = await folder.begin();
      await tx.write(c!.meta, c!.body);
      await sink.close(); // no commit: as if killed
      await kind.tear(root, m);
      sink = await kind.make(root);
      folder = await sink.open(m);
      assert.deepEqual([...folder.known], ['1']);
      const back = await kind.read(root, m);
      assert.equal(back.length, 1);
      assert.ok(back[0]?.body.equals(toLf(a!.body)));
      await rm(root, { recursive: true });
    });

    test('rebase relabels the archived messages (Maildir: U= in the file name)', async () => {
      const root = await fresh();
      let sink = await kind.make(root);
      const m = box('INBOX', 7n);
      let folder = await sink.open(m);
      const tx = await folder.begin();
      for (const x of messages(m)) await tx.write(x.meta, x.body);
      await tx.commit();
      sink = await kind.make(root);
      folder = await sink.open(box('INBOX', 8n));
      const fps = [];
      for await (const f of folder.fingerprints()) fps.push(f);
      assert.equal(fps.length, 4, 'every archived message, including those not in wire form');
      await folder.rebase(8n, [{ id: '101', ref: fps[0]!.ref }, { id: '102', ref: fps[1]!.ref }]);
      const back = await kind.read(root, m);
      assert.equal(back.length, 4, 'nothing removed from the archive');
      if (kind.name === 'maildir') assert.deepEqual(back.map((b) => b.uid).filter((u) => u !== undefined).sort(), ['101', '102']);
      await rm(root, { recursive: true });
    });

    test('files and folders are private', async () => {
      const root = await fresh();
      const sink = await kind.make(root);
      await sink.open({ path: 'Deep', delimiter: '/', noSelect: true });
      const folder = await sink.open(box('Deep/Child'));
      const tx = await folder.begin();
      const x = msg(box('Deep/Child'), 1, 'Subject: x\r\n\r\ny\r\n');
      await tx.write(x.meta, x.body);
      await tx.commit();
      await sink.close();
      const entries = await readdir(root, { recursive: true, withFileTypes: true });
      for (const e of entries) {
        const st = await stat(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
        assert.equal(st.mode & 0o077, 0, `${e.name} is private`);
      }
      await rm(root, { recursive: true });
    });
  });
}

test('mbox: a file shortened behind our back is re-matched, not trusted', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mf-mbox-'));
  const sink = new MboxSink(root, await Checkpoint.load(join(root, STATE_FILE), SOURCE));
  const m = box('INBOX');
  const folder = await sink.open(m);
  const tx = await folder.begin();
  for (const x of messages(m)) await tx.write(x.meta, x.body);
  await tx.commit();
  await truncate(sink.fileOf(m), 10);
  const again = new MboxSink(root, await Checkpoint.load(join(root, STATE_FILE), SOURCE));
  assert.equal((await again.open(m)).needsRematch, true);
});

test('maildir: a body the disk refuses (in memory or streamed) is a destination error and is not counted', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mf-maildir-'));
  try {
    const sink = await kinds[0]!.make(root);
    const m = box('INBOX');
    const folder = await sink.open(m);
    const tx = await folder.begin();
    await rm(join(maildirFolderDir(root, 'maildir++', m), 'tmp'), { recursive: true });
    const [one, two] = messages(m);
    const isDestination = (e: unknown): boolean => e instanceof MailferryError && e.kind === 'destination';
    await assert.rejects(tx.write(one!.meta, one!.body), isDestination);
    await assert.rejects(tx.write(two!.meta, Readable.from([two!.body])), isDestination);
    await tx.abort();
    assert.equal(folder.known.size, 0);
    await sink.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
