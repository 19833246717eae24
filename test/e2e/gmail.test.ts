import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runCli, type CliResult } from '../helpers/cli.js';
import { gmailMailbox, gmailPeer, type GmailMessage, type GmailPeer } from '../helpers/gmail-peer.js';
import { startSmtp } from '../helpers/smtp.js';

/**
 * Gmail done right (issue 15), against the Gmail stand-in (test/helpers/gmail-peer.ts): in Gmail
 * mode a backup to Maildir stores every message once (All Mail, Spam, Trash hold the files) and
 * shows each label as a folder of hard links; label changes are carried on rerun with no body
 * downloaded; without X-GM-EXT-1, All Mail is a plain folder.
 */
const run = promisify(execFile);

const mailbox = gmailMailbox;

/** The Maildir++ folder (as Python's mailbox names it, "" for INBOX) that shows each label. */
const FOLDER: Record<string, string> = { '\\Inbox': '', '\\Sent': '[Gmail].Sent Mail', '\\Starred': '[Gmail].Starred', '\\Important': '[Gmail].Important', '\\Draft': '[Gmail].Drafts' };
const folderOf = (label: string): string => FOLDER[label] ?? label.replace(/\//g, '.');

/** What Python's mailbox.Maildir reads: folder -> sorted Message-IDs, and the inode of every file. */
const READ = `
import mailbox, json, os, sys
root = sys.argv[1]
md = mailbox.Maildir(root, factory=None, create=False)
out = {'folders': {}, 'inodes': {}}
def walk(name, box):
    ids = []
    for key in box.keys():
        m = box.get_message(key)
        ids.append(m['Message-ID'])
    out['folders'][name] = sorted(ids)
walk('', md)
for name in md.list_folders():
    walk(name, md.get_folder(name))
for d, _subs, files in os.walk(root):
    if os.path.basename(d) in ('cur', 'new'):
        for f in files:
            out['inodes'][os.path.join(d, f)] = os.stat(os.path.join(d, f)).st_ino
print(json.dumps(out))
`;

interface Read {
  folders: Record<string, string[]>;
  inodes: Record<string, number>;
}

async function read(root: string): Promise<Read> {
  const { stdout } = await run('python3', ['-c', READ, root], { maxBuffer: 1 << 24 });
  return JSON.parse(stdout) as Read;
}

/** Folder -> Message-IDs expected in Gmail mode for `box`. */
function expected(box: GmailMessage[]): Record<string, string[]> {
  const out: Record<string, string[]> = { '': [], '[Gmail].All Mail': [], '[Gmail].Spam': [], '[Gmail].Trash': [] };
  const id = (i: number): string => `<m${i}@gmail.test>`;
  box.forEach((m, i) => {
    if (m.bin === 'spam') return void (out['[Gmail].Spam'] as string[]).push(id(i));
    if (m.bin === 'trash') return void (out['[Gmail].Trash'] as string[]).push(id(i));
    (out['[Gmail].All Mail'] as string[]).push(id(i));
    for (const l of m.labels) (out[folderOf(l)] ??= []).push(id(i));
  });
  for (const k of Object.keys(out)) out[k]?.sort();
  return out;
}

describe('Gmail: backup to Maildir against the Gmail stand-in', () => {
  let peer: GmailPeer;
  let box: GmailMessage[];
  let root: string;
  let state: string;
  const backup = (extra: string[] = []): Promise<CliResult> =>
    runCli(['backup', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `maildir:${join(root, 'md')}`, ...extra], { PW: 'pw', XDG_STATE_HOME: state }, { timeoutMs: 90_000 });

  before(async () => {
    box = mailbox();
    peer = await gmailPeer({ messages: box });
    root = await mkdtemp(join(tmpdir(), 'mf-gmail-'));
    state = join(root, 'state');
  });
  after(async () => {
    await peer.close();
    await rm(root, { recursive: true, force: true });
  });

  test('every message once (one inode each), each label a folder of hard links, Python reads every folder', async () => {
    const r = await backup();
    assert.equal(r.status, 0, r.stderr);
    // All Mail, Spam and Trash bodies only: no label folder is downloaded again.
    assert.equal(peer.bodies, box.length);
    const got = await read(join(root, 'md'));
    const want = expected(box);
    // Every label folder Gmail lists exists, empty ones too (the parent label "Reisen" has none).
    assert.deepEqual(got.folders['Reisen'], []);
    delete got.folders['Reisen'];
    for (const k of ['[Gmail].Important', '[Gmail].Starred', '[Gmail].Sent Mail', '[Gmail].Drafts']) want[k] ??= [];
    assert.deepEqual(got.folders, want);
    assert.equal(new Set(Object.values(got.inodes)).size, box.length, 'one inode per message');
    // The labels and Gmail ids are in the archive's state.
    const st = JSON.parse(await readFile(join(root, 'md', '.mailferry-state.json'), 'utf8')) as { folders: Record<string, { labels?: Record<string, { l: string[]; m?: string; t?: string }> }> };
    const recorded = Object.values(st.folders['[Gmail]/All Mail']?.labels ?? {});
    assert.equal(recorded.length, 7);
    assert.ok(recorded.some((x) => x.l.join('|') === ['Rechnungen bezahlt', 'Reisen/Köln 2024', 'Work/Projects', '\\Important'].sort().join('|')));
    assert.ok(recorded.every((x) => /^\d+$/.test(x.m ?? '') && /^\d+$/.test(x.t ?? '')));
    assert.ok((await stat(join(root, 'md', '.Reisen.Köln 2024', 'cur'))).isDirectory(), 'Unicode on disk');
  });

  test('a label added and one removed on the server: carried on rerun, no body downloaded, the message kept', async () => {
    const bodies = peer.bodies;
    peer.setLabels(1, ['\\Inbox', 'Work']);
    peer.setLabels(5, ['\\Important']);
    const r = await backup();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(peer.bodies, bodies, 'no body fetched again');
    const got = await read(join(root, 'md'));
    delete got.folders['Reisen'];
    const want = expected(box);
    for (const k of ['[Gmail].Important', '[Gmail].Starred', '[Gmail].Sent Mail', '[Gmail].Drafts', 'Reisen.Köln 2024', 'Rechnungen bezahlt', 'Work.Projects']) want[k] ??= [];
    assert.deepEqual(got.folders, want);
    assert.ok(got.folders['[Gmail].All Mail']?.includes('<m5@gmail.test>'), 'a removed label removes the link, never the message');
    assert.equal(new Set(Object.values(got.inodes)).size, box.length);
    // A third run has nothing to do.
    const again = await backup();
    assert.equal(again.status, 0, again.stderr);
    assert.equal(peer.bodies, bodies);
  });
});

describe('Gmail without X-GM-EXT-1: All Mail is a plain folder', () => {
  test('every folder fetched as a folder, All Mail included (also with the gmail profile)', async () => {
    const box = mailbox();
    const peer = await gmailPeer({ messages: box, gmExt: false });
    const root = await mkdtemp(join(tmpdir(), 'mf-gmail-plain-'));
    try {
      const r = await runCli(
        ['backup', '--profile', 'gmail', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `maildir:${join(root, 'md')}`],
        { PW: 'pw', XDG_STATE_HOME: join(root, 'state') },
        { timeoutMs: 90_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      const got = await read(join(root, 'md'));
      assert.equal(got.folders['[Gmail].All Mail']?.length, 7, 'All Mail fetched');
      assert.deepEqual(got.folders[''], ['<m1@gmail.test>', '<m2@gmail.test>', '<m4@gmail.test>']);
      // Copies, not links: more files than messages.
      assert.ok(Object.keys(got.inodes).length > box.length);
      assert.equal(new Set(Object.values(got.inodes)).size, Object.keys(got.inodes).length);
      assert.equal(JSON.stringify(await readdir(join(root, 'md', '.[Gmail].All Mail', 'cur'))).includes('U='), true);
    } finally {
      await peer.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('Gmail: backup to mbox against the Gmail stand-in', () => {
  test("one file for All Mail with X-Gmail-Labels in Takeout's form, no label files; read back byte-exact", async () => {
    const box = mailbox();
    const peer = await gmailPeer({ messages: box });
    const root = await mkdtemp(join(tmpdir(), 'mf-gmail-mbox-'));
    try {
      const r = await runCli(
        ['backup', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `mbox:${join(root, 'mbox')}`],
        { PW: 'pw', XDG_STATE_HOME: join(root, 'state') },
        { timeoutMs: 90_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.equal(peer.bodies, box.length);
      const script = `
import mailbox, json, re, sys
out = {}
def labels(m):
    found = re.search(rb'^X-Gmail-Labels: ?(.*)$', m.as_bytes(), re.M)
    return None if found is None else found.group(1).decode('utf-8')
for path in sys.argv[2:]:
    out[path] = sorted([m['Message-ID'], labels(m)] for m in mailbox.mbox(sys.argv[1] + '/' + path, create=False))
print(json.dumps(out))
`;
      const files = ['[Gmail].sbd/All Mail', '[Gmail].sbd/Spam', '[Gmail].sbd/Trash'];
      const { stdout } = await run('python3', ['-c', script, join(root, 'mbox'), ...files]);
      const got = JSON.parse(stdout) as Record<string, [string, string | null][]>;
      const takeout = (l: string): string => ({ '\\Inbox': 'Inbox', '\\Sent': 'Sent', '\\Starred': 'Starred', '\\Important': 'Important', '\\Draft': 'Drafts' })[l] ?? l;
      const want = box
        .map((m, i) => ({ m, i }))
        .filter(({ m }) => m.bin === undefined)
        .map(({ m, i }) => [`<m${i}@gmail.test>`, [...m.labels].sort().map(takeout).join(',')]);
      assert.deepEqual(got['[Gmail].sbd/All Mail'], want.sort());
      assert.deepEqual(got['[Gmail].sbd/Spam'], [['<m6@gmail.test>', null]]);
      assert.deepEqual(got['[Gmail].sbd/Trash'], [['<m7@gmail.test>', null]]);
      // No file per label: every message is stored once.
      await assert.rejects(stat(join(root, 'mbox', 'INBOX')));
      await assert.rejects(stat(join(root, 'mbox', 'Work')));
      // Read back (restore's reader): the original bytes, the label line taken off again.
      const { MboxSource } = await import('../../src/drivers/mbox/source.js');
      const { silentLogger } = await import('../../src/log/logger.js');
      const src = new MboxSource({ root: join(root, 'mbox'), streamThreshold: 1 << 20, log: silentLogger });
      const all = (await src.mailboxes()).find((m) => m.path === '[Gmail]/All Mail');
      assert.ok(all);
      const sel = await src.select(all);
      const metas = [];
      for await (const m of src.list(sel.mailbox, () => true)) metas.push(m);
      const bodies = [];
      for await (const f of src.fetch(metas, new AbortController().signal)) bodies.push(Buffer.isBuffer(f.body) ? f.body.toString('latin1') : '');
      await src.close();
      assert.deepEqual(bodies.sort(), box.filter((m) => m.bin === undefined).map((m) => m.raw.toString('latin1')).sort());
    } finally {
      await peer.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('Gmail mode: label folders without All Mail', () => {
  test('--include of a label alone is not a silent empty archive: All Mail named, exit 3', async () => {
    const peer = await gmailPeer({ messages: mailbox() });
    const root = await mkdtemp(join(tmpdir(), 'mf-gmail-include-'));
    try {
      const r = await runCli(
        ['backup', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `maildir:${join(root, 'md')}`, '--include', 'Work'],
        { PW: 'pw', XDG_STATE_HOME: join(root, 'state') },
        { timeoutMs: 90_000 },
      );
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, /\[Gmail\]\/All Mail, which --include\/--exclude left out/);
      assert.equal(peer.bodies, 0);
    } finally {
      await peer.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('Gmail: forward sends each message once', () => {
  test('without --include: All Mail, Spam and Trash, one delivery per message whatever its labels; a rerun sends nothing; --include INBOX sends INBOX', async () => {
    const box = mailbox();
    const peer = await gmailPeer({ messages: box });
    const relay = await startSmtp({ mode: 'tls' });
    const root = await mkdtemp(join(tmpdir(), 'mf-gmail-forward-'));
    const forward = (state: string, extra: string[] = []): Promise<CliResult> =>
      runCli(
        ['forward', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--smtp', `smtps://127.0.0.1:${relay.port}`, '--smtp-ca', relay.caFile, '--rcpt', 'me@new.example.org', ...extra],
        { PW: 'pw', XDG_STATE_HOME: join(root, state) },
        { timeoutMs: 90_000 },
      );
    const ids = (): string[] => relay.received.map((m) => /^Message-ID: (.*)$/m.exec(m.data.toString('latin1'))?.[1]?.trim() ?? '?').sort();
    try {
      const r = await forward('st1');
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(ids(), box.map((_m, i) => `<m${i}@gmail.test>`).sort());
      assert.equal(peer.bodies, box.length, 'each body fetched once');
      const again = await forward('st1');
      assert.equal(again.status, 0, again.stderr);
      assert.equal(relay.received.length, box.length, 'a rerun sends nothing');
      relay.received.length = 0;
      const inbox = await forward('st2', ['--include', 'INBOX']);
      assert.equal(inbox.status, 0, inbox.stderr);
      assert.deepEqual(ids(), ['<m1@gmail.test>', '<m2@gmail.test>', '<m4@gmail.test>']);
    } finally {
      await peer.close();
      await relay.stop();
      await rm(root, { recursive: true, force: true });
    }
  });
});
