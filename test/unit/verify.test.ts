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
