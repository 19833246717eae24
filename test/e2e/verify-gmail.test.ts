import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT } from '../../src/domain/errors.js';
import { gmailMailbox, gmailPeer, type GmailPeer } from '../helpers/gmail-peer.js';
import { withDovecot, type Account } from '../helpers/server.js';
import { differences, runJsonLines, type JsonLinesRun as Run } from '../helpers/verify-run.js';

/**
 * `--verify` after copies of Gmail (the stand-in, test/helpers/gmail-peer.ts) made in Gmail mode:
 * a backup into Maildir and mbox archives that keep each message once with its labels, and a
 * migrate `--labels keywords` into a server without labels (each message once, in its home
 * folder, its other labels as keywords). Verify reads the source as the copy did, so neither a
 * label folder nor a keyword is a false difference; a label changed on Gmail since is named.
 */
const dave: Account = { name: 'vgmail-dave', password: 'vgmail-dave-pw' };
const dc = withDovecot({ users: [dave] });

describe('verify after Gmail-mode copies', { skip: dc.skip }, () => {
  let peer: GmailPeer;
  let root = '';
  before(async () => {
    peer = await gmailPeer({ messages: gmailMailbox() });
    root = await mkdtemp(join(tmpdir(), 'mf-verify-gmail-'));
  });
  after(async () => {
    await peer?.close();
    if (root !== '') await rm(root, { recursive: true, force: true });
  });
  const gmail = (): string[] => ['--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW'];
  const run = (args: string[]): Promise<Run> => runJsonLines(args, { PW: 'pw', TPW: dave.password, XDG_STATE_HOME: join(root, 'state') });
  const summary = (r: Run): Record<string, unknown> | undefined => r.lines.find((l) => l['type'] === 'verify');
  const found = (r: Run): string[] => differences(r).map((d) => `${d['kind'] as string} ${d['folder'] as string}: ${d['detail'] as string}`);

  test('backup --verify into Gmail-mode Maildir and mbox archives: no differences at both depths; a label changed since is named', async () => {
    const to = ['--to', `maildir:${join(root, 'md')}`, '--to', `mbox:${join(root, 'mbox')}`];
    for (const depth of ['--verify', '--verify=full']) {
      const r = await run(['backup', '--json', ...gmail(), ...to, depth]);
      assert.equal(r.status, 0, `${found(r).join('\n')}\n${r.stderr}`);
      assert.deepEqual(found(r), []);
      assert.equal(summary(r)?.['ok'], true);
    }
    // Message 1 (\Inbox) labelled Work on Gmail since the backup: one difference per archive.
    peer.setLabels(1, ['\\Inbox', 'Work']);
    const r = await run(['verify', '--json', '--quick', ...gmail(), ...to]);
    assert.equal(r.status, EXIT.differences, `${r.stdout}\n${r.stderr}`);
    const one = 'flags [Gmail]/All Mail: labels: source "Work \\Inbox", copy "\\Inbox"';
    assert.deepEqual(found(r), [one, one]);
    // A rerun carries the change (Maildir: a link; mbox: a label record in the state, the file's
    // X-Gmail-Labels line unchanged) and verify reads it as the copy keeps it: no difference.
    const again = await run(['backup', '--json', ...gmail(), ...to, '--verify=full']);
    assert.equal(again.status, 0, `${found(again).join('\n')}\n${again.stderr}`);
    assert.deepEqual(found(again), []);
    peer.setLabels(1, ['\\Inbox']);
  });

  test('migrate --labels keywords --verify: no differences at both depths; a label changed since is a flag difference', async () => {
    const to = ['--to', `imaps://${dave.name}@127.0.0.1:${dc.server.imapsPort}`, '--target-ca', dc.server.caFile, '--target-password-env', 'TPW', '--labels', 'keywords'];
    for (const depth of ['--verify', '--verify=full']) {
      const r = await run(['migrate', '--json', ...gmail(), ...to, depth]);
      assert.equal(r.status, 0, `${found(r).join('\n')}\n${r.stderr}`);
      assert.deepEqual(found(r), []);
      assert.equal(summary(r)?.['ok'], true);
    }
    // Message 2 (\Important \Inbox, home INBOX) starred on Gmail since: \Flagged in its home.
    peer.setLabels(2, ['\\Important', '\\Inbox', '\\Starred']);
    const r = await run(['verify', '--json', '--quick', ...gmail(), ...to]);
    assert.equal(r.status, EXIT.differences, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(found(r), ['flags INBOX: flags: source "$Important \\Flagged \\Seen", copy "$Important \\Seen"']);
  });
});
