import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deletable, olderThan } from '../../src/commands/deletable.js';
import { openArchive, STATE_FILE, type OpenArchive } from '../../src/commands/archive.js';
import type { MailboxInfo, MessageMeta } from '../../src/domain/message.js';
import { silentLogger } from '../../src/log/logger.js';
import { Checkpoint, epochSeconds, keepFirstSeen, markFirstSeen, type FolderCheckpoint } from '../../src/state/checkpoint.js';

/** First-seen times in the checkpoint: recorded at commit for undated messages only, kept, aged. */
const POP3 = 'pop3s://alice@127.0.0.1:995';
const INBOX: MailboxInfo = { path: 'INBOX', delimiter: '' };

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mf-cp-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface StateJson {
  folders: Record<string, { firstSeen?: Record<string, number>; names?: string[]; uids?: string }>;
}

async function stateOf(path: string): Promise<StateJson> {
  return JSON.parse(await readFile(path, 'utf8')) as StateJson;
}

async function archive(dir: string, kind: 'maildir' | 'mbox', source = POP3): Promise<OpenArchive> {
  return openArchive({ kind, path: join(dir, kind) }, source, 'maildir++', silentLogger);
}

async function commit(a: OpenArchive, mailbox: MailboxInfo, metas: MessageMeta[]): Promise<void> {
  const folder = await a.sink.open(mailbox);
  const tx = await folder.begin();
  for (const m of metas) await tx.write(m, Buffer.from(`Subject: ${m.id}\r\n\r\nbody\r\n`));
  await tx.commit();
}

async function closeAll(archives: OpenArchive[]): Promise<void> {
  for (const a of archives) {
    await a.sink.close();
    await a.lock.release();
  }
}

const undated = (id: string): MessageMeta => ({ mailbox: INBOX, id, size: 20, flags: new Set() });

test('markFirstSeen keeps the first time; keepFirstSeen forgets ids that are gone', () => {
  const f: FolderCheckpoint = { ids: new Set(['a', 'b']) };
  markFirstSeen(f, ['a'], 100);
  markFirstSeen(f, ['a', 'b'], 200);
  assert.deepEqual([...(f.firstSeen ?? [])], [['a', 100], ['b', 200]]);
  keepFirstSeen(f, new Set(['b']));
  assert.deepEqual([...(f.firstSeen ?? [])], [['b', 200]]);
  assert.equal(epochSeconds(new Date(1_700_000_000_999)), 1_700_000_000);
});

test('first-seen times survive save and load; ids without one are stamped "now" by firstSeenOf', async () => {
  await withDir(async (dir) => {
    const path = join(dir, STATE_FILE);
    const cp = await Checkpoint.load(path, POP3);
    cp.update('INBOX', (f) => {
      f.ids = new Set(['u1', 'u2', '__proto__']);
      markFirstSeen(f, ['u1', '__proto__'], 1000);
    });
    await cp.save();
    assert.deepEqual((await stateOf(path)).folders['INBOX']?.firstSeen, { u1: 1000, ['__proto__']: 1000 });

    const again = await Checkpoint.load(path, POP3);
    assert.deepEqual([...(again.folder('INBOX')?.firstSeen ?? [])].sort(), [['__proto__', 1000], ['u1', 1000]]);
    const seen = again.firstSeenOf('INBOX', ['u1', 'u2'], 5000);
    assert.deepEqual([...seen], [['u1', 1000], ['u2', 5000]]);
    await again.save();
    assert.deepEqual((await stateOf(path)).folders['INBOX']?.firstSeen, { u1: 1000, u2: 5000, ['__proto__']: 1000 });
    // Asking again does not move the time.
    assert.equal((await Checkpoint.load(path, POP3)).firstSeenOf('INBOX', ['u2'], 9000).get('u2'), 5000);

    await writeFile(path, JSON.stringify({ version: 1, source: POP3, folders: { INBOX: { names: ['x'], firstSeen: { x: 'soon' } } } }));
    await assert.rejects(Checkpoint.load(path, POP3), /unknown format \(firstSeen of x\)/);
  });
});

test('Maildir and mbox record first-seen times in the commit, only for messages without an internal date', async () => {
  await withDir(async (dir) => {
    const before = epochSeconds();
    const archives = [await archive(dir, 'maildir'), await archive(dir, 'mbox')];
    try {
      for (const a of archives) {
        await commit(a, INBOX, [undated('u1'), undated('u2')]);
        await commit(a, { path: 'Dated', delimiter: '/', uidValidity: 7n }, [
          { mailbox: { path: 'Dated', delimiter: '/', uidValidity: 7n }, id: '1', size: 20, flags: new Set(['\\Seen']), internalDate: new Date() },
        ]);
      }
    } finally {
      await closeAll(archives);
    }
    const after = epochSeconds();
    for (const kind of ['maildir', 'mbox']) {
      const state = await stateOf(join(dir, kind, STATE_FILE));
      const seen = state.folders['INBOX']?.firstSeen ?? {};
      assert.deepEqual(Object.keys(seen).sort(), ['u1', 'u2'], kind);
      for (const t of Object.values(seen)) assert.ok(t >= before && t <= after, `${kind}: ${t} within the run`);
      assert.equal(state.folders['Dated']?.firstSeen, undefined, `${kind}: no first-seen for dated messages`);
      assert.equal(state.folders['Dated']?.uids, '1');
    }
  });
});

test('deletable: on the server, durable in every archive, and old in every archive (latest time decides)', async () => {
  await withDir(async (dir) => {
    const day = 86_400;
    const now = 100 * day;
    const archives = [await archive(dir, 'maildir'), await archive(dir, 'mbox')];
    try {
      await commit(archives[0] as OpenArchive, INBOX, ['old', 'mixed', 'young', 'only-md', 'legacy', 'gone'].map(undated));
      await commit(archives[1] as OpenArchive, INBOX, ['old', 'mixed', 'young', 'legacy', 'gone'].map(undated));
      const set = (a: OpenArchive, times: Record<string, number | undefined>): void =>
        a.checkpoint.update('INBOX', (f) => {
          for (const [id, t] of Object.entries(times)) {
            if (t === undefined) f.firstSeen?.delete(id);
            else f.firstSeen?.set(id, t);
          }
        });
      set(archives[0] as OpenArchive, { old: now - 10 * day, mixed: now - 10 * day, young: now - day, 'only-md': now - 10 * day, legacy: undefined, gone: now - 10 * day });
      set(archives[1] as OpenArchive, { old: now - 9 * day, mixed: now - 2 * day, young: now - day, legacy: now - 10 * day, gone: now - 10 * day });
      const onServer = ['old', 'mixed', 'young', 'only-md', 'legacy', 'new-on-server'];

      assert.deepEqual(await deletable(onServer, archives, INBOX, undefined, now), ['old', 'mixed', 'young', 'legacy'], '--delete');
      assert.deepEqual(await deletable(onServer, archives, INBOX, 0, now), ['old', 'mixed', 'young', 'legacy'], '--delete-older-than 0');
      assert.deepEqual(await deletable(onServer, archives, INBOX, 5, now), ['old'], '5 days');
      assert.deepEqual(await deletable(onServer, archives, INBOX, 0.5, now), ['old', 'mixed', 'young'], 'half a day');
      assert.deepEqual(await deletable(onServer, archives, INBOX, 1000, now), [], 'a large DAYS deletes nothing');
      // "legacy" had no time in the Maildir archive: it was recorded as `now` (durably), so it ages from there.
      const md = await stateOf(join(dir, 'maildir', STATE_FILE));
      assert.equal(md.folders['INBOX']?.firstSeen?.['legacy'], now);
      assert.deepEqual(await deletable(onServer, archives, INBOX, 5, now + 6 * day), ['old', 'mixed', 'young', 'legacy']);
    } finally {
      await closeAll(archives);
    }
  });
});

test('olderThan: strictly more than DAYS days before now', () => {
  const seen = new Map([
    ['a', 1000],
    ['b', 1000 - 86_400],
    ['c', 1000 - 86_401],
  ]);
  assert.deepEqual(olderThan(['a', 'b', 'c', 'unknown'], seen, 1, 1000), ['c']);
  assert.deepEqual(olderThan(['a', 'b', 'c'], seen, 0, 1001), ['a', 'b', 'c']);
});

test('recordSent is durable through the journal alone; save() folds it in and empties the journal; a torn line is ignored', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-journal-'));
  const path = join(dir, 'forward.json');
  const src = 'imaps://a@h:993';
  const cp = await Checkpoint.load(path, src);
  await cp.recordSent('INBOX', '1', { reply: '250 ok 1', key: 'k1:10' });
  await cp.recordSent('INBOX', '2', { reply: '250 ok 2', key: 'k2:20' });
  await assert.rejects(readFile(path), 'no state file written per message');
  assert.equal((await readFile(`${path}.journal`, 'utf8')).split('\n').length, 3, 'two lines');
  // A crash here: a fresh load replays the journal.
  const again = await Checkpoint.load(path, src);
  assert.deepEqual([...(again.folder('INBOX')?.ids ?? [])], ['1', '2']);
  assert.equal(again.folder('INBOX')?.sent?.get('2')?.reply, '250 ok 2');
  // save() writes the state file and empties the journal.
  await again.save();
  assert.equal(await readFile(`${path}.journal`, 'utf8'), '');
  assert.ok((await readFile(path, 'utf8')).includes('250 ok 1'));
  // A record after the save, then a torn line (a crash mid-append): the record counts, the torn line does not.
  await again.recordSent('INBOX', '3', { reply: '250 ok 3', key: 'k3:30' });
  await appendFile(`${path}.journal`, '{"folder":"INBOX","id":"4","se');
  const third = await Checkpoint.load(path, src);
  assert.deepEqual([...(third.folder('INBOX')?.ids ?? [])].sort(), ['1', '2', '3']);
  assert.equal((await stat(`${path}.journal`)).mode & 0o777, 0o600);
  // A line that is JSON but not a record is refused, not silently dropped.
  await writeFile(`${path}.journal`, '{"folder":"INBOX"}\n');
  await assert.rejects(Checkpoint.load(path, src), /state journal .* unknown format/);
});

test('places are kept apart from the folder records, survive a reload, and a bad one is refused', async () => {
  await withDir(async (dir) => {
    const path = join(dir, STATE_FILE);
    const cp = await Checkpoint.load(path, 'imaps://alice@example.org');
    cp.setPlace('work', { delimiter: '/', place: ['\\77ork'] });
    cp.setPlace('Work', { delimiter: '/' });
    await cp.save();
    assert.equal(cp.folder('work'), undefined, 'a place is no record of what is durable');
    const again = await Checkpoint.load(path, 'imaps://alice@example.org');
    assert.deepEqual(again.placeOf('work'), { delimiter: '/', place: ['\\77ork'] });
    assert.deepEqual(again.placeOf('Work'), { delimiter: '/' });
    assert.deepEqual(again.names().sort(), ['Work', 'work']);
    const json = JSON.parse(await readFile(path, 'utf8')) as { places: Record<string, unknown> };
    json.places['work'] = { delimiter: '/', place: [''] };
    await writeFile(path, JSON.stringify(json));
    await assert.rejects(Checkpoint.load(path, 'imaps://alice@example.org'), /unknown format \(place of work\)/);
  });
});

test('saving the state never writes through a link planted at a guessable temporary name', async () => {
  const { symlink } = await import('node:fs/promises');
  const dir = await mkdtemp(join(tmpdir(), 'mf-state-link-'));
  try {
    const victim = join(dir, 'victim');
    await writeFile(victim, 'precious\n');
    const path = join(dir, STATE_FILE);
    // The name an earlier version used: `.<state>.<pid>.tmp`.
    await symlink(victim, join(dir, `.${STATE_FILE}.${process.pid}.tmp`));
    const cp = await Checkpoint.load(path, 'imap://a@h');
    cp.update('INBOX', (f) => f.ids.add('1'));
    await cp.save();
    assert.equal(await readFile(victim, 'utf8'), 'precious\n');
    assert.match(await readFile(path, 'utf8'), /INBOX/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('label records keep an mbox offset and places a Gmail label; a bad one is refused by id', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'state.json');
    const src = 'imaps://alice@gmail.example';
    const cp = await Checkpoint.load(path, src);
    cp.update('[Gmail]/All Mail', (f) => {
      f.ids.add('7');
      f.labels = new Map([['7', { labels: ['\\Inbox', 'Work'], globalId: '12', at: 4096 }]]);
    });
    cp.setPlace('[Gmail]/Starred', { delimiter: '/', label: '\\Starred' });
    await cp.save();
    const again = await Checkpoint.load(path, src);
    assert.deepEqual(again.folder('[Gmail]/All Mail')?.labels?.get('7'), { labels: ['\\Inbox', 'Work'], globalId: '12', at: 4096 });
    assert.deepEqual(again.placeOf('[Gmail]/Starred'), { delimiter: '/', label: '\\Starred' });
    await writeFile(path, JSON.stringify({ version: 1, source: src, folders: { A: { names: ['7'], labels: { 7: { l: [], o: -1 } } } } }));
    await assert.rejects(Checkpoint.load(path, src), /unknown format \(labels of 7\)/);
  });
});
