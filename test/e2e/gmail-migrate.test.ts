import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliJson, type JsonResult } from '../helpers/cli.js';
import { gmailMailbox, gmailPeer, type GmailMessage, type GmailPeer } from '../helpers/gmail-peer.js';
import { connect, withDovecot, type Account } from '../helpers/server.js';

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

/** Every message on the target: Message-ID -> [folder, its keywords and \Flagged, sorted][]. */
async function onTarget(user: Account): Promise<Map<string, [string, string[]][]>> {
  const c = await connect(dc.server, user);
  const out = new Map<string, [string, string[]][]>();
  try {
    for (const f of await c.list()) {
      if (f.flags.has('\\Noselect')) continue;
      const box = await c.mailboxOpen(f.path, { readOnly: true });
      if (box.exists === 0) continue;
      for await (const m of c.fetch('1:*', { uid: true, flags: true, envelope: true })) {
        const flags = [...(m.flags ?? [])].filter((x) => !x.startsWith('\\') || x === '\\Flagged').sort();
        const id = m.envelope?.messageId ?? '?';
        out.set(id, [...(out.get(id) ?? []), [f.path, flags]]);
      }
    }
  } finally {
    await c.logout();
  }
  return out;
}

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
    const got = await onTarget(dave);
    assert.deepEqual(
      Object.fromEntries([...got].sort(([a], [b]) => (a < b ? -1 : 1))),
      {
        '<m0@gmail.test>': [['[Gmail]/All Mail', []]],
        '<m1@gmail.test>': [['INBOX', []]],
        '<m2@gmail.test>': [['INBOX', ['$Important']]],
        '<m3@gmail.test>': [['Work/Projects', ['$Sent', 'Rechnungen_bezahlt']]],
        '<m4@gmail.test>': [['Reisen/Köln 2024', ['$Inbox', 'Work', '\\Flagged']]],
        '<m5@gmail.test>': [['Reisen/Köln 2024', ['$Important', 'Rechnungen_bezahlt', 'Work/Projects']]],
        '<m6@gmail.test>': [['[Gmail]/Spam', []]],
        '<m7@gmail.test>': [['[Gmail]/Trash', []]],
        '<m8@gmail.test>': [['[Gmail]/Drafts', []]],
      },
    );
    const again = await migrate(dave, ['--labels', 'keywords']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], 0);
    assert.equal(peer.bodies - bodies, 9, 'nothing fetched again');
  });

  test('--labels folders (the default): every label folder with a copy of its messages, as Gmail shows them', async () => {
    const r = await migrate(erin, []);
    assert.equal(r.status, 0, r.stderr);
    const got = await onTarget(erin);
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
    const view = (msgs: GmailMessage[]): [string, string, string][] =>
      msgs.map((m): [string, string, string] => [/^Message-ID: (.*)$/m.exec(m.raw.toString('latin1'))?.[1]?.trim() ?? '?', [...m.labels].sort().join(','), m.bin ?? '']).sort();
    try {
      const r = await migrate();
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.out['messages'], box.length);
      assert.equal(source.bodies, box.length, 'each body fetched once');
      // Spam and Trash are plain folders in Gmail mode (All Mail does not hold them): their messages come without labels.
      const want = box.map((m) => (m.bin === undefined ? m : { ...m, labels: [] }));
      assert.deepEqual(view(target.messages), view(want), 'one copy per message, with exactly its labels');
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
