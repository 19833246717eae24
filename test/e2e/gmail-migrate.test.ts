import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliJson, type JsonResult } from '../helpers/cli.js';
import { gmailMailbox, gmailPeer, type GmailPeer } from '../helpers/gmail-peer.js';
import { withDovecot, type Account } from '../helpers/server.js';
import { byMessage, KEYWORD_HOMES, labelView, onTarget } from '../helpers/gmail-view.js';

/**
 * migrate from Gmail (the stand-in, test/helpers/gmail-peer.ts) into plain Dovecot, which has no
 * labels: `--labels keywords` copies each message once, into the folder of its most specific
 * label, the other labels as keywords (sources/label-homes.ts); `--labels folders` (the default)
 * gives every label folder a copy, as Gmail's own IMAP shows them.
 */
const mailbox = gmailMailbox;

const dave: Account = { name: 'gmail-dave', password: 'gmail-dave-pw' };
const erin: Account = { name: 'gmail-erin', password: 'gmail-erin-pw' };
const dc = withDovecot({ users: [dave, erin] });

describe('migrate from Gmail into a server without labels', { skip: dc.skip }, () => {
  let peer: GmailPeer;
  let root = '';
  before(async () => {
    peer = await gmailPeer({ messages: mailbox() });
    root = await mkdtemp(join(tmpdir(), 'mf-gmail-migrate-'));
  });
  after(async () => {
    await peer?.close();
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  const migrate = (user: Account, extra: string[]): Promise<JsonResult> =>
    runCliJson(
      [
        'migrate', '--json',
        '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW',
        '--to', `imaps://${user.name}@127.0.0.1:${dc.server.imapsPort}`, '--target-ca', dc.server.caFile, '--target-password-env', 'TPW',
        ...extra,
      ],
      { PW: 'pw', TPW: user.password, XDG_STATE_HOME: join(root, 'state') },
    );

  test('--labels keywords: each message once, in its most specific label\'s folder, the other labels as keywords; a rerun copies nothing', async () => {
    const bodies = peer.bodies;
    const r = await migrate(dave, ['--labels', 'keywords']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.out['messages'], 9);
    assert.equal(peer.bodies - bodies, 9, 'each body fetched once');
    const got = await onTarget(dc.server, dave);
    assert.deepEqual(byMessage(got), KEYWORD_HOMES);
    const again = await migrate(dave, ['--labels', 'keywords']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], 0);
    assert.equal(peer.bodies - bodies, 9, 'nothing fetched again');
  });

  test('--labels folders (the default): every label folder with a copy of its messages, as Gmail shows them', async () => {
    const r = await migrate(erin, []);
    assert.equal(r.status, 0, r.stderr);
    const copies = mailbox().filter((m) => m.bin === undefined).reduce((n, m) => n + m.labels.length, 0);
    assert.equal(r.out['labelCopies'], copies, 'one extra copy per label of each message');
    assert.equal(r.out['messages'], mailbox().length + copies);
    const got = await onTarget(dc.server, erin);
    assert.deepEqual(got.get('<m4@gmail.test>')?.map(([f]) => f).sort(), ['INBOX', 'Reisen/Köln 2024', 'Work', '[Gmail]/All Mail', '[Gmail]/Starred']);
    assert.deepEqual(got.get('<m0@gmail.test>')?.map(([f]) => f), ['[Gmail]/All Mail']);
  });
});

describe('migrate from Gmail into Gmail', () => {
  test('each message appended once, to All Mail, and given its labels with STORE +X-GM-LABELS; Spam and Trash as folders; a rerun appends nothing', async () => {
    const box = mailbox();
    const source = await gmailPeer({ messages: box });
    const target = await gmailPeer({ messages: [] });
    const root = await mkdtemp(join(tmpdir(), 'mf-gmail-gmail-'));
    const migrate = (): Promise<JsonResult> =>
      runCliJson(
        [
          'migrate', '--json',
          '--from', `imap://alice@127.0.0.1:${source.port}`, '--tls-mode', 'plain', '--password-env', 'PW',
          '--to', `imap://bob@127.0.0.1:${target.port}`, '--target-tls-mode', 'plain', '--target-password-env', 'PW',
        ],
        { PW: 'pw', XDG_STATE_HOME: join(root, 'state') },
      );
    try {
      const r = await migrate();
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.out['messages'], box.length);
      assert.equal(source.bodies, box.length, 'each body fetched once');
      // Spam and Trash are plain folders in Gmail mode (All Mail does not hold them): their messages come without labels.
      const want = box.map((m) => (m.bin === undefined ? m : { ...m, labels: [] }));
      assert.deepEqual(labelView(target.messages), labelView(want), 'one copy per message, with exactly its labels');
      const again = await migrate();
      assert.equal(again.status, 0, again.stderr);
      assert.equal(again.out['messages'], 0);
      assert.equal(target.messages.length, box.length, 'nothing appended twice');
    } finally {
      await source.close();
      await target.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
