import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { loadVerifyConfig } from '../../src/config/verify.js';
import { MailferryError } from '../../src/domain/errors.js';
import { compareDigests, digestBody } from '../../src/verify/digest.js';
import { headerField } from '../../src/verify/headers.js';

test('digests: equal bytes are the same, whether a Buffer or a stream cut anywhere', async () => {
  const body = Buffer.from('Subject: a\r\n\r\nbody\r\n');
  const whole = await digestBody(body);
  for (let cut = 0; cut <= body.length; cut++) {
    const parts = [body.subarray(0, cut), body.subarray(cut)];
    assert.equal(compareDigests(whole, await digestBody(Readable.from(parts))), 'same', `cut at ${cut}`);
  }
});

test('digests: NUL served as 0x80 and one final CRLF more are known differences; any other byte is an alteration', async () => {
  const a = await digestBody(Buffer.from('Subject: a\r\n\r\nx\0y\r\n'));
  assert.equal(compareDigests(a, await digestBody(Buffer.from('Subject: a\r\n\r\nx\x80y\r\n', 'latin1'))), 'nul');
  assert.equal(compareDigests(await digestBody(Buffer.from('S: a\r\n\r\nxy')), await digestBody(Buffer.from('S: a\r\n\r\nxy\r\n'))), 'newline');
  assert.equal(compareDigests(a, await digestBody(Buffer.from('Subject: b\r\n\r\nx\0y\r\n'))), 'altered');
  assert.equal(compareDigests(a, await digestBody(Buffer.from('Subject: a\r\n\r\nx\0y\r\n\r\n'))), 'newline');
  assert.equal(compareDigests(a, await digestBody(Buffer.from('Subject: a\r\n\r\nx\0y\r\n\r\n\r\n'))), 'altered');
});

test('headerField: unfolded, first occurrence, case-insensitive, undefined when absent', () => {
  const h = Buffer.from('message-ID:\n <a@b>\nSubject: one\n two\nSubject: later\n\n');
  assert.equal(headerField(h, 'message-id'), '<a@b>');
  assert.equal(headerField(h, 'subject'), 'one two');
  assert.equal(headerField(h, 'date'), undefined);
});

test('the verify loader reads the copy command from the addresses and takes its flags', () => {
  const backup = loadVerifyConfig({ from: 'imaps://me@host', passwordEnv: 'PW', to: ['maildir:/tmp/a', 'mbox:/tmp/b'] });
  assert.equal(backup.mode, 'backup');
  assert.equal(backup.depth, 'full');
  const migrate = loadVerifyConfig({ from: 'imaps://me@a', passwordEnv: 'PW', to: ['imaps://me@b'], targetPasswordEnv: 'PW2', quick: true, map: ['X=Y'] });
  assert.equal(migrate.mode, 'migrate');
  assert.equal(migrate.depth, 'quick');
  assert.deepEqual(migrate.mode === 'migrate' ? migrate.copy.map : [], [{ from: 'X', to: 'Y' }]);
  const restore = loadVerifyConfig({ from: 'maildir:/tmp/a', to: ['imaps://me@b'], passwordEnv: 'PW', ignore: ['flags,dates'] });
  assert.equal(restore.mode, 'restore');
  assert.deepEqual([...restore.ignore].sort(), ['dates', 'flags']);
});

test('the verify loader reports its problems and the copy loader\'s at once', () => {
  assert.throws(
    () => loadVerifyConfig({ from: 'maildir:/tmp/a', to: ['imaps://me@b', 'imaps://me@c'], passwordEnv: 'PW', ignore: ['bodies'] }),
    (e: unknown) => e instanceof MailferryError && e.kind === 'usage' && /--ignore bodies/.test(e.message) && /one IMAP account/.test(e.message),
  );
  assert.throws(
    () => loadVerifyConfig({ passwordEnv: 'PW', to: ['maildir:/tmp/a'] }),
    (e: unknown) => e instanceof MailferryError && e.kind === 'usage' && /--from is required/.test(e.message),
  );
});

test('identical messages with different flags pair with their own flags, not across (Maildir on disk)', async () => {
  const { mkdtemp, mkdir, writeFile, utimes, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { MaildirSource } = await import('../../src/drivers/maildir/source.js');
  const { verifyCopy } = await import('../../src/verify/compare.js');
  const { createLogger } = await import('../../src/log/logger.js');
  const root = await mkdtemp(join(tmpdir(), 'mf-verify-unit-'));
  try {
    const log = createLogger({ level: 'error', json: false, write: () => undefined });
    const make = async (dir: string, names: string[]): Promise<InstanceType<typeof MaildirSource>> => {
      for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(dir, sub), { recursive: true });
      for (const n of names) {
        const f = join(dir, 'cur', n);
        await writeFile(f, 'Subject: same\nMessage-ID: <same@x>\n\nsame body\n');
        await utimes(f, 1_700_000_000, 1_700_000_000);
      }
      return new MaildirSource({ root: dir, layout: 'maildir++', streamThreshold: 1 << 20, log });
    };
    const source = await make(join(root, 'a'), ['1.a:2,S', '2.b:2,F']);
    const copy = await make(join(root, 'b'), ['1.a:2,F', '2.b:2,S']);
    const found: string[] = [];
    const outcome = await verifyCopy(source, copy, 'maildir:b', {
      depth: 'full', include: [], exclude: [], place: (m) => Promise.resolve(m.path), sourceHasFlags: true, ignore: new Set(),
      batchBytes: 1 << 20, batchMessages: 100, signal: new AbortController().signal, log, onDifference: (d) => found.push(`${d.kind} ${d.detail}`),
    });
    assert.deepEqual(found, []);
    assert.equal(outcome.differences, 0);
    assert.equal(outcome.folders[0]?.copy, 2);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('the differences table on a terminal: a header row, columns aligned, the detail last', async () => {
  const { differenceTable } = await import('../../src/commands/verify.js');
  const table = differenceTable([
    { kind: 'missing', destination: 'maildir:/m', folder: 'INBOX', id: '7', messageId: '<a@b>', detail: 'not in the copy' },
    { kind: 'folder-missing', destination: 'maildir:/m', folder: 'Résumé', detail: 'folder missing in the copy (2 messages)' },
    { kind: 'extra', destination: 'imaps://me@h:993', folder: 'Sent', target: 'Gesendet', copyId: '12', subject: 'hi', detail: 'in the copy only' },
  ]).split('\n');
  assert.equal(table.length, 4);
  assert.match(table[0] as string, /^KIND {12}COPY +FOLDER +ID +MESSAGE +WHAT DIFFERS$/);
  assert.equal((table[3] as string).indexOf('imaps://'), (table[0] as string).indexOf('COPY'));
  const col = (line: string, word: string): number => [...line.slice(0, line.indexOf(word))].length;
  assert.equal(col(table[1] as string, 'not in the copy'), col(table[0] as string, 'WHAT DIFFERS'));
  assert.equal(col(table[2] as string, 'folder missing'), col(table[0] as string, 'WHAT DIFFERS'));
  assert.match(table[3] as string, /Sent -> Gesendet +\(copy\) 12 +"hi" +in the copy only$/);
});
