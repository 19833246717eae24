import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { prng } from '../fixtures/nasty.js';
import { gmailPeer, type GmailMessage, type GmailPeer } from '../helpers/gmail-peer.js';

/**
 * kill -9 at random moments of a Gmail-mode backup to Maildir, then a rerun: every message once
 * (one inode), each label folder holding exactly the messages with that label, none twice.
 */
const run = promisify(execFile);
const POOL = ['\\Inbox', '\\Sent', '\\Starred', '\\Important', 'Work', 'Work/Projects', 'Reisen/Köln 2024', 'Rechnungen bezahlt'];
const FOLDER: Record<string, string> = { '\\Inbox': '', '\\Sent': '[Gmail].Sent Mail', '\\Starred': '[Gmail].Starred', '\\Important': '[Gmail].Important' };

function mailbox(n: number): GmailMessage[] {
  const next = prng(15);
  const pad = 'x'.repeat(900);
  return Array.from({ length: n }, (_v, i) => {
    const labels = [...new Set(Array.from({ length: next() % 5 }, () => POOL[next() % POOL.length] as string))];
    return { raw: Buffer.from(`Message-ID: <c${i}@gmail.test>\r\nSubject: c${i}\r\n\r\n${pad}\r\n`), labels, ...(i % 97 === 0 ? { bin: 'trash' as const } : {}) };
  });
}

const READ = `
import mailbox, json, os, sys
root = sys.argv[1]
md = mailbox.Maildir(root, factory=None, create=False)
out = {'folders': {'': sorted(m['Message-ID'] for m in md)}, 'inodes': []}
for name in md.list_folders():
    out['folders'][name] = sorted(m['Message-ID'] for m in md.get_folder(name))
for d, _subs, files in os.walk(root):
    if os.path.basename(d) in ('cur', 'new'):
        out['inodes'] += [os.stat(os.path.join(d, f)).st_ino for f in files]
print(json.dumps(out))
`;

describe('Gmail mode: crash safety', () => {
  let peer: GmailPeer;
  let root = '';
  const box = mailbox(1500);
  before(async () => {
    peer = await gmailPeer({ messages: box });
    root = await mkdtemp(join(tmpdir(), 'mf-gmail-crash-'));
  });
  after(async () => {
    await peer.close();
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  const start = (): { done: Promise<number | null>; kill: () => void } => {
    const child = spawn(
      process.execPath,
      [resolve('bin/mailferry.js'), 'backup', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--connections', '3', '--batch-mb', '0.02', '--to', `maildir:${join(root, 'md')}`],
      { env: { ...process.env, PW: 'pw', XDG_STATE_HOME: join(root, 'state') }, stdio: 'ignore' },
    );
    const done = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    return { done, kill: () => child.kill('SIGKILL') };
  };

  // Known bug (issue 15, open): in about half the runs a label folder keeps one stale link after a
  // kill -9 (a message whose label was removed between runs still shows in that label's folder; no
  // message is lost or stored twice). Until drivers/maildir/labels.ts is fixed this runs as a todo:
  // it still runs and reports, without failing the suite.
  test('kill -9 at random moments, then rerun: each message once, each label exactly its messages', { todo: 'issue 15: stale label link after kill -9' }, async () => {
    const next = prng(20261203);
    let killed = 0;
    for (let trial = 0; trial < 5; trial++) {
      const r = start();
      const timer = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 400 + (next() % 1200)));
      if ((await Promise.race([r.done, timer])) === 'timeout') {
        r.kill();
        killed++;
      }
      await r.done;
      // Between runs, a label changes on the server: carried by the next run that gets there.
      peer.setLabels(trial + 1, ['Work', '\\Inbox']);
    }
    assert.ok(killed >= 2, `at least two runs were killed mid-way (${killed})`);
    assert.equal(await start().done, 0);
    const { stdout } = await run('python3', ['-c', READ, join(root, 'md')], { maxBuffer: 1 << 26 });
    const got = JSON.parse(stdout) as { folders: Record<string, string[]>; inodes: number[] };
    const want: Record<string, string[]> = { '[Gmail].All Mail': [], '[Gmail].Trash': [] };
    box.forEach((m, i) => {
      const id = `<c${i}@gmail.test>`;
      if (m.bin === 'trash') return void want['[Gmail].Trash']?.push(id);
      want['[Gmail].All Mail']?.push(id);
      for (const l of m.labels) (want[FOLDER[l] ?? l.replace(/\//g, '.')] ??= []).push(id);
    });
    for (const [folder, ids] of Object.entries(want)) assert.deepEqual(got.folders[folder], ids.sort(), folder);
    assert.equal(new Set(got.inodes).size, box.length, 'one inode per message');
  });
});
