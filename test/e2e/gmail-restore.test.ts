import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runCliJson, type JsonResult } from '../helpers/cli.js';
import { gmailMailbox, gmailPeer, type GmailMessage, type GmailPeer } from '../helpers/gmail-peer.js';
import { withDovecot, type Account } from '../helpers/server.js';
import { byMessage, KEYWORD_HOMES, labelView, onTarget } from '../helpers/gmail-view.js';

/**
 * restore of a Gmail-mode Maildir or mbox archive (backed up from the Gmail stand-in,
 * test/helpers/gmail-peer.ts) carries the labels: into Gmail, each message appended once to All
 * Mail and labelled there (drivers/maildir/gmail-archive.ts, mbox/gmail-archive.ts,
 * imap/target-labels.ts); into plain Dovecot with `--labels keywords`, each message once in its
 * home folder (sources/label-homes.ts); `--labels folders` (the default) All Mail and a folder
 * per label with a copy of its messages, from either format (sources/label-folders.ts), the
 * copies counted.
 */
const KINDS = ['maildir', 'mbox'] as const;
const user = (name: string, kind: string): Account => ({ name: `gmail-${name}-${kind}`, password: `gmail-${name}-${kind}-pw` });
const dc = withDovecot({ users: KINDS.flatMap((k) => [user('fay', k), user('gus', k)]) });

for (const kind of KINDS) describe(`restore a Gmail-mode ${kind} archive`, () => {
  let peer: GmailPeer;
  let box: GmailMessage[];
  let root = '';
  const archive = (): string => `${kind}:${join(root, 'archive')}`;
  const fay = user('fay', kind);
  const gus = user('gus', kind);

  before(async () => {
    box = gmailMailbox();
    peer = await gmailPeer({ messages: box });
    root = await mkdtemp(join(tmpdir(), 'mf-gmail-restore-'));
    const r = await runCli(
      ['backup', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', archive()],
      { PW: 'pw', XDG_STATE_HOME: join(root, 'state') },
      { timeoutMs: 90_000 },
    );
    assert.equal(r.status, 0, r.stderr);
  });
  after(async () => {
    await peer?.close();
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('into Gmail: each message appended once, with exactly its labels; Spam and Trash as folders; a rerun appends nothing', async () => {
    const target = await gmailPeer({ messages: [] });
    const restore = (): Promise<JsonResult> =>
      runCliJson(['restore', '--json', '--from', archive(), '--to', `imap://bob@127.0.0.1:${target.port}`, '--tls-mode', 'plain', '--password-env', 'PW'], {
        PW: 'pw',
        XDG_STATE_HOME: join(root, 'state-gmail'),
      });
    try {
      const r = await restore();
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.out['messages'], box.length);
      const want = box.map((m) => (m.bin === undefined ? m : { ...m, labels: [] }));
      assert.deepEqual(labelView(target.messages), labelView(want), 'one copy per message, with exactly its labels');
      const again = await restore();
      assert.equal(again.status, 0, again.stderr);
      assert.equal(again.out['messages'], 0);
      assert.equal(target.messages.length, box.length, 'nothing appended twice');
    } finally {
      await target.close();
    }
  });

  const restoreInto = (user: Account, extra: string[]): Promise<JsonResult> =>
    runCliJson(
      ['restore', '--json', '--from', archive(), '--to', `imaps://${user.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'PW', ...extra],
      { PW: user.password, XDG_STATE_HOME: join(root, 'state-dovecot') },
    );

  test('into Dovecot, --labels keywords: each message once, in its most specific label\'s folder, the other labels as keywords; a rerun copies nothing', { skip: dc.skip }, async () => {
    const r = await restoreInto(fay, ['--labels', 'keywords']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.out['messages'], box.length);
    const got = await onTarget(dc.server, fay);
    assert.deepEqual(byMessage(got), KEYWORD_HOMES);
    const again = await restoreInto(fay, ['--labels', 'keywords']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], 0);
  });

  test('into Dovecot, --labels folders (the default): All Mail and every label folder with a copy of its messages, the copies counted', { skip: dc.skip }, async () => {
    const r = await restoreInto(gus, []);
    assert.equal(r.status, 0, r.stderr);
    const got = await onTarget(dc.server, gus);
    // Both formats: an mbox has no file per label, its label folders come from the labels.
    assert.deepEqual(got.get('<m4@gmail.test>')?.map(([f]) => f).sort(), ['INBOX', 'Reisen/Köln 2024', 'Work', '[Gmail]/All Mail', '[Gmail]/Starred']);
    assert.deepEqual(got.get('<m0@gmail.test>')?.map(([f]) => f), ['[Gmail]/All Mail']);
    const copies = box.filter((m) => m.bin === undefined).reduce((n, m) => n + m.labels.length, 0);
    assert.equal(r.out['messages'], box.length + copies);
    assert.equal(r.out['labelCopies'], copies, 'one extra copy per label of each message');
  });
});

describe('restore a Gmail-mode Maildir archive: label folders by their recorded label', () => {
  test('Starred and Important on exactly the same messages (elimination cannot tell them): each restored with its labels, once', async () => {
    const msg = (n: number, labels: string[]): GmailMessage => ({ raw: Buffer.from(`Message-ID: <s${n}@gmail.test>\r\nSubject: s${n}\r\n\r\nbody ${n}\r\n`), labels });
    const box = [msg(0, ['\\Important', '\\Starred']), msg(1, ['\\Important', '\\Inbox', '\\Starred']), msg(2, ['\\Inbox'])];
    const source = await gmailPeer({ messages: box });
    const target = await gmailPeer({ messages: [] });
    const root = await mkdtemp(join(tmpdir(), 'mf-gmail-recorded-'));
    const env = { PW: 'pw', XDG_STATE_HOME: join(root, 'state') };
    try {
      const b = await runCli(['backup', '--from', `imap://alice@127.0.0.1:${source.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `maildir:${join(root, 'md')}`], env);
      assert.equal(b.status, 0, b.stderr);
      const r = await runCliJson(['restore', '--json', '--from', `maildir:${join(root, 'md')}`, '--to', `imap://bob@127.0.0.1:${target.port}`, '--tls-mode', 'plain', '--password-env', 'PW'], env);
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /cannot be told/);
      assert.equal(target.messages.length, box.length, 'each message once');
      assert.deepEqual(labelView(target.messages), labelView(box));
    } finally {
      await source.close();
      await target.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
