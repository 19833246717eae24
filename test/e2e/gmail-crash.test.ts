import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { prng } from '../fixtures/nasty.js';
import { runCli } from '../helpers/cli.js';
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

  // Each run is killed once the stand-in has sent a random number of bodies (not after a fixed
  // time, which on a loaded machine kills every run before its first commit), and between runs 40
  // random messages get new labels, so some of them are the ones a killed commit had just linked.
  test('kill -9 at random moments, then rerun: each message once, each label exactly its messages', async () => {
    const next = prng(20261203);
    let killed = 0;
    for (let trial = 0; trial < 5; trial++) {
      const r = start();
      const target = peer.bodies + 50 + (next() % 400);
      let exited = false;
      void r.done.then(() => (exited = true));
      while (peer.bodies < target && !exited) await new Promise((res) => setTimeout(res, 5));
      if (!exited) {
        r.kill();
        killed++;
      }
      await r.done;
      // Between runs, labels change on the server: carried by the next run that gets there.
      for (let n = 0; n < 40; n++) {
        const i = next() % box.length;
        const labels = [...new Set(Array.from({ length: next() % 5 }, () => POOL[next() % POOL.length] as string))];
        if (box[i]?.bin === undefined) peer.setLabels(i, labels);
      }
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

describe('Gmail mode: the label folders on disk, not the records, are what a rerun corrects', () => {
  test('links a crash left unrecorded, or recorded older than they are, follow a label change', async () => {
    const msg = (n: number, labels: string[]): GmailMessage => ({ raw: Buffer.from(`Message-ID: <c${n}@gmail.test>\r\nSubject: c${n}\r\n\r\nbody\r\n`), labels });
    const box = [msg(0, ['\\Inbox']), msg(1, ['\\Sent', 'Work/Projects', 'Rechnungen bezahlt']), msg(2, ['\\Inbox', '\\Starred', 'Reisen/Köln 2024', 'Work'])];
    const peer = await gmailPeer({ messages: box });
    const root = await mkdtemp(join(tmpdir(), 'mf-gmail-disk-'));
    const backup = (): Promise<number | null> =>
      runCli(['backup', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `maildir:${join(root, 'md')}`], { PW: 'pw', XDG_STATE_HOME: join(root, 'state') }).then((r) => r.status);
    try {
      assert.equal(await backup(), 0);
      // The two states a kill -9 leaves (All Mail UIDs 2 and 3 are messages 1 and 2): message 1
      // linked by a commit whose checkpoint was never written (no record); message 2 linked by a
      // sync whose record was never written (the record older than its links).
      const file = join(root, 'md', '.mailferry-state.json');
      const st = JSON.parse(await readFile(file, 'utf8')) as { folders: Record<string, { labels: Record<string, { l: string[] }> }> };
      const labels = st.folders['[Gmail]/All Mail']?.labels ?? {};
      assert.ok(labels['2'] !== undefined && labels['3'] !== undefined);
      delete labels['2'];
      labels['3'] = { l: ['\\Inbox'] };
      await writeFile(file, JSON.stringify(st));
      // Then their labels change on the server.
      peer.setLabels(1, ['Work']);
      peer.setLabels(2, ['\\Sent']);
      const bodies = peer.bodies;
      assert.equal(await backup(), 0);
      assert.equal(peer.bodies, bodies, 'no body fetched again');
      const { stdout } = await run('python3', ['-c', READ, join(root, 'md')]);
      const got = JSON.parse(stdout) as { folders: Record<string, string[]>; inodes: number[] };
      assert.deepEqual(got.folders[''], ['<c0@gmail.test>']);
      assert.deepEqual(got.folders['Work'], ['<c1@gmail.test>']);
      assert.deepEqual(got.folders['[Gmail].Sent Mail'], ['<c2@gmail.test>']);
      for (const f of ['Work.Projects', 'Rechnungen bezahlt', '[Gmail].Starred', 'Reisen.Köln 2024']) assert.deepEqual(got.folders[f], [], f);
      assert.equal(new Set(got.inodes).size, box.length, 'one inode per message');
    } finally {
      await peer.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
