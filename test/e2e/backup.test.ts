import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chownToMailUser, findDoveadm } from '../../scripts/dev/dovecot.js';
import { seedMailbox } from '../../scripts/dev/seed.js';
import { toLf } from '../../src/formats/fingerprint.js';
import { lfToCrlf } from '../../src/formats/encoder.js';
import { maildirFolderDir, mboxFolderFile } from '../../src/drivers/archive-paths.js';
import { imapView, nastyMailbox, smallMessages } from '../fixtures/nasty.js';
import { readMaildirFolder, readMboxFile, type ArchivedMessage } from '../helpers/archive.js';
import { lastJson, runCli } from '../helpers/cli.js';
import { muttCases, skipUnlessMutt } from '../helpers/mutt.js';
import { connect, fetchAll, withDovecot, type FetchedMessage } from '../helpers/server.js';

const run = promisify(execFile);
const muttSkip = skipUnlessMutt();
const dc = withDovecot({ nasty: true });
const folders = nastyMailbox();
const selectable = folders.map((f) => f.path);

function backupArgs(root: string, extra: string[] = []): string[] {
  const s = dc.server;
  return [
    'backup', '--json',
    '--from', `imaps://${dc.alice.name}@127.0.0.1:${s.imapsPort}`,
    '--ca', s.caFile,
    '--password-env', 'ALICE_PW',
    '--to', `maildir:${join(root, 'md')}`,
    '--to', `mbox:${join(root, 'mbox')}`,
    ...extra,
  ];
}

async function backup(root: string, extra: string[] = []): Promise<{ status: number | null; summary: Record<string, unknown>; stderr: string }> {
  const r = await runCli(backupArgs(root, extra), { ALICE_PW: dc.alice.password });
  const line = r.stdout.trim().split('\n').pop() ?? '{}';
  return { status: r.status, summary: JSON.parse(line) as Record<string, unknown>, stderr: r.stderr };
}

const sysFlags = (f: Set<string>): Set<string> => new Set([...f].filter((x) => x !== '\\Recent'));
const sec = (d: Date | undefined): number => Math.floor((d?.getTime() ?? NaN) / 1000);

/** The archive folder equals the server folder: same messages once each, bytes, flags, dates. */
function assertSameMessages(where: string, server: FetchedMessage[], archived: ArchivedMessage[], byUid: boolean): void {
  assert.equal(archived.length, server.length, `${where}: message count`);
  const left = [...archived];
  for (const m of server) {
    const i = left.findIndex((a) => (byUid ? a.uid === String(m.uid) : a.body.equals(toLf(m.raw))));
    assert.notEqual(i, -1, `${where}: UID ${m.uid} missing`);
    const a = left.splice(i, 1)[0] as ArchivedMessage;
    assert.ok(a.body.equals(toLf(m.raw)), `${where}: UID ${m.uid} bytes differ`);
    assert.deepEqual(a.flags, sysFlags(m.flags), `${where}: UID ${m.uid} flags`);
    assert.equal(sec(a.date), sec(m.internalDate), `${where}: UID ${m.uid} date`);
  }
}

async function assertArchiveExact(root: string): Promise<void> {
  for (const path of selectable) {
    const server = await fetchAll(dc.server, dc.alice, path);
    const mailbox = { path, delimiter: '/' };
    assertSameMessages(`maildir ${path}`, server, await readMaildirFolder(maildirFolderDir(join(root, 'md'), 'maildir++', mailbox)), true);
    const mboxRoot = join(root, 'mbox');
    const source = `imaps://alice@127.0.0.1:${dc.server.imapsPort}`;
    assertSameMessages(`mbox ${path}`, server, await readMboxFile(mboxFolderFile(mboxRoot, mailbox), mboxRoot, path, source), false);
  }
}

/** A second Dovecot user whose mail_location is a copy of the archive sees what alice sees. */
async function assertDovecotServes(archive: string, user: string, params: string): Promise<void> {
  const copy = await mkdtemp(join(tmpdir(), 'mf-serve-'));
  try {
    await cp(archive, join(copy, 'md'), { recursive: true, preserveTimestamps: true });
    await chownToMailUser(copy);
    const reader = { name: user, password: `${user}-pw` };
    await dc.server.addUser({ ...reader, mailLocation: `maildir:${join(copy, 'md')}${params}:UTF-8` });
    const c = await connect(dc.server, reader);
    const listed = (await c.list()).filter((l) => !l.flags.has('\\Noselect') && !l.flags.has('\\NonExistent')).map((l) => l.path);
    await c.logout();
    assert.deepEqual(listed.sort(), [...selectable].sort());
    for (const path of selectable) {
      const orig = await fetchAll(dc.server, dc.alice, path);
      const served = await fetchAll(dc.server, reader, path);
      assert.equal(served.length, orig.length, path);
      for (const m of orig) {
        const s = served.find((x) => x.raw.equals(m.raw));
        assert.ok(s, `${path} UID ${m.uid} served byte-exact`);
        assert.deepEqual(sysFlags(s.flags), sysFlags(m.flags), `${path} UID ${m.uid} flags`);
        assert.equal(sec(s.internalDate), sec(m.internalDate), `${path} UID ${m.uid} date`);
      }
      // RFC822.SIZE as Dovecot takes it from our names' W= (it does not measure a file that has one).
      const rc = await connect(dc.server, reader);
      try {
        await rc.mailboxOpen(path, { readOnly: true });
        for await (const m of rc.fetch('1:*', { uid: true, size: true, source: true })) {
          assert.equal(m.size, m.source?.length, `${path} UID ${m.uid}: RFC822.SIZE is the size served`);
        }
      } finally {
        await rc.logout();
      }
    }
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}

describe('backup IMAP -> Maildir + mbox', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-backup-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('the server holds the fixture as seeded (what byte-exact means over IMAP)', async () => {
    for (const f of folders) {
      const server = await fetchAll(dc.server, dc.alice, f.path);
      assert.equal(server.length, f.messages.length, f.path);
      f.messages.forEach((m, i) => assert.ok(server[i]?.raw.equals(imapView(m.raw)), `${f.path} #${i}`));
    }
  });

  test('first run copies every folder and message byte-exact, with flags and dates', async () => {
    const r = await backup(root);
    assert.equal(r.status, 0, r.stderr);
    const total = folders.reduce((n, f) => n + f.messages.length, 0);
    assert.equal(r.summary['messages'], total);
    assert.equal(r.summary['folders'], selectable.length);
    await assertArchiveExact(root);
    // Every name carries S= (the file's size) and W= (its size with CRLF), as Dovecot writes them.
    for (const sub of ['cur', 'new']) {
      for (const name of await readdir(join(root, 'md', sub))) {
        const body = await readFile(join(root, 'md', sub, name));
        assert.match(name, new RegExp(`,S=${body.length},W=${lfToCrlf(body).length},U=`), name);
      }
    }
    // Empty folders exist; the \Noselect parent "Deep" holds no messages but its child does.
    assert.ok((await stat(join(root, 'md', '.Empty', 'cur'))).isDirectory());
    assert.equal((await stat(join(root, 'mbox', 'Empty'))).size, 0);
    assert.ok((await stat(join(root, 'mbox', 'Deep.sbd', 'Child'))).isFile());
    await assert.rejects(stat(join(root, 'md', '.Deep', 'cur')));
    // Unicode names on disk, not modified UTF-7.
    assert.ok((await stat(join(root, 'md', '.Résumé – Ünïcödé', 'cur'))).isDirectory());
    assert.ok((await stat(join(root, 'mbox', '日本語'))).isFile());
    // Private files, and no secret in the state.
    const state = await readFile(join(root, 'md', '.mailferry-state.json'), 'utf8');
    assert.equal(state.includes(dc.alice.password), false);
    assert.equal((await stat(join(root, 'md', '.mailferry-state.json'))).mode & 0o077, 0);
  });

  test("Python's mailbox module reads both archives and finds the same messages", async () => {
    const script = `
import mailbox, json, sys
root = sys.argv[1]
md = mailbox.Maildir(root + '/md', factory=None, create=False)
out = {'maildir': {'INBOX': len(md)}, 'mbox': {}}
for name in md.list_folders():
    out['maildir'][name] = len(md.get_folder(name))
for path in sys.argv[2:]:
    box = mailbox.mbox(root + '/mbox/' + path, create=False)
    ids = sorted(m['X-Mailferry-Case'] or '' for m in box)
    out['mbox'][path] = ids
    for m in box:
        m.get_flags()
print(json.dumps(out))
`;
    const files = ['INBOX', 'Archive.sbd/2023', 'Projects.sbd/Client A.sbd/Reports', 'Sent', 'Drafts', '日本語'];
    const { stdout } = await run('python3', ['-c', script, root, ...files], { maxBuffer: 1 << 24 });
    const got = JSON.parse(stdout) as { maildir: Record<string, number>; mbox: Record<string, string[]> };
    assert.equal(got.maildir['INBOX'], folders[0]?.messages.length);
    assert.equal(got.maildir['Archive.2023'], folders.find((f) => f.path === 'Archive/2023')?.messages.length);
    assert.equal(got.maildir['Résumé – Ünïcödé'], 1);
    const caseOf = (raw: Buffer): string => /X-Mailferry-Case: ([^\r\n]*)/.exec(raw.toString('latin1'))?.[1] ?? '';
    const expected: Record<string, string> = { INBOX: 'INBOX', 'Archive.sbd/2023': 'Archive/2023', 'Projects.sbd/Client A.sbd/Reports': 'Projects/Client A/Reports', Sent: 'Sent', Drafts: 'Drafts', 日本語: '日本語' };
    for (const [file, path] of Object.entries(expected)) {
      const want = (folders.find((f) => f.path === path)?.messages ?? []).map((m) => caseOf(m.raw)).sort();
      assert.deepEqual(got.mbox[file], want, file);
    }
  });

  test('mutt reads both archives as they are: every message, and which are read, flagged and replied', { skip: muttSkip }, async () => {
    const caseOf = (raw: Buffer): string => /X-Mailferry-Case: ([^\r\n]*)/.exec(raw.toString('latin1'))?.[1] ?? '-';
    const patterns = { all: '~A', read: '~R', flagged: '~F', replied: '~Q' };
    const flagOf: Record<string, string> = { read: '\\Seen', flagged: '\\Flagged', replied: '\\Answered' };
    // mutt adds up the flags of every Status/X-Status line of an mbox message, ours (first) and any
    // the message brought along (the fixture's status-ro says "X-Status: A"): there, those count too.
    const ownFlags = (raw: Buffer): string[] => {
      const head = raw.toString('latin1').split(/\r?\n\r?\n/)[0] ?? '';
      const status = [...head.matchAll(/^Status: *(.*)$/gim)].map((m) => m[1]).join('');
      const x = [...head.matchAll(/^X-Status: *(.*)$/gim)].map((m) => m[1]).join('');
      return [...(status.includes('R') ? ['\\Seen'] : []), ...(x.includes('A') ? ['\\Answered'] : []), ...(x.includes('F') ? ['\\Flagged'] : [])];
    };
    const expected = (messages: typeof folders[number]['messages'], mbox: boolean): Record<string, string[]> =>
      Object.fromEntries(
        Object.keys(patterns).map((k) => {
          const flag = flagOf[k];
          const has = (m: (typeof messages)[number]): boolean => flag === undefined || [...(m.flags ?? []), ...(mbox ? ownFlags(m.raw) : [])].includes(flag);
          return [k, messages.filter(has).map((m) => caseOf(m.raw)).sort()];
        }),
      );
    let checked = 0;
    for (const f of folders.filter((x) => x.messages.length > 0)) {
      const mailbox = { path: f.path, delimiter: '/' };
      const md = maildirFolderDir(join(root, 'md'), 'maildir++', mailbox);
      assert.deepEqual(await muttCases(md, patterns), expected(f.messages, false), `mutt -f ${md}`);
      const mbox = mboxFolderFile(join(root, 'mbox'), mailbox);
      assert.deepEqual(await muttCases(mbox, patterns), expected(f.messages, true), `mutt -f ${mbox}`);
      checked += 2;
    }
    assert.ok(checked >= 10, `${checked} mailboxes read by mutt`);
  });

  test('Dovecot serves the Maildir++ archive as is: same folders, messages, flags, dates', async () => {
    await assertDovecotServes(join(root, 'md'), 'maildir-pp', '');
  });

  test('--layout fs writes a tree Dovecot serves with LAYOUT=fs', async () => {
    const fsRoot = await mkdtemp(join(tmpdir(), 'mf-fs-'));
    try {
      const r = await runCli(
        ['backup', '--from', `imaps://alice@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'ALICE_PW', '--layout', 'fs', '--to', `maildir:${fsRoot}`],
        { ALICE_PW: dc.alice.password },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.ok((await stat(join(fsRoot, 'Projects', 'Client A', 'Reports', 'cur'))).isDirectory());
      await assertDovecotServes(fsRoot, 'maildir-fs', ':LAYOUT=fs');
    } finally {
      await rm(fsRoot, { recursive: true, force: true });
    }
  });

  test('--include/--exclude choose folders; an include that matches nothing is reported (exit 3)', async () => {
    const sub = await mkdtemp(join(tmpdir(), 'mf-include-'));
    try {
      const r = await runCli(
        ['backup', '--json', '--from', `imaps://alice@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'ALICE_PW',
          '--to', `maildir:${sub}`, '--include', 'Projects/*', '--include', 'Nope', '--exclude', '*/Reports'],
        { ALICE_PW: dc.alice.password },
      );
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, /--include Nope: no such folder/);
      const summary = lastJson(r.stdout) as { folders: number; messages: number };
      assert.deepEqual([summary.folders, summary.messages], [1, 0], 'only Projects/Client A, which is empty');
      assert.ok((await stat(join(sub, '.Projects.Client A', 'cur'))).isDirectory());
      await assert.rejects(stat(join(sub, '.Projects.Client A.Reports')));
      await assert.rejects(stat(join(sub, '.Sent')));
    } finally {
      await rm(sub, { recursive: true, force: true });
    }
  });

  test('a rerun copies nothing; one new message copies one', async () => {
    const again = await backup(root);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.summary['messages'], 0);
    const [extra] = smallMessages(1, 99);
    await seedMailbox(dc.server, dc.alice, [{ path: 'Sent', messages: [extra!] }]);
    const one = await backup(root);
    assert.equal(one.status, 0, one.stderr);
    assert.equal(one.summary['messages'], 1);
    await assertArchiveExact(root);
  });

  test('a changed UIDVALIDITY is re-matched: nothing copied twice', { skip: findDoveadm() === undefined }, async () => {
    const doveadm = findDoveadm() as string;
    await run(doveadm, ['-c', dc.server.confFile, 'mailbox', 'update', '-u', 'alice', '--uid-validity', '4242', 'INBOX']);
    const c = await connect(dc.server, dc.alice);
    const box = await c.mailboxOpen('INBOX', { readOnly: true });
    await c.logout();
    assert.equal(box.uidValidity, 4242n);
    const r = await backup(root);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.summary['messages'], 0, 'every INBOX message re-matched');
    await assertArchiveExact(root);
    const [extra] = smallMessages(1, 77);
    await seedMailbox(dc.server, dc.alice, [{ path: 'INBOX', messages: [extra!] }]);
    const one = await backup(root);
    assert.equal(one.summary['messages'], 1);
    await assertArchiveExact(root);
  });

  test('a state file deleted by hand is rebuilt from the archive without duplicates', async () => {
    await rm(join(root, 'mbox', '.mailferry-state.json'));
    await writeFile(join(root, 'md', '.mailferry-state.json'), JSON.stringify({ version: 1, source: `imaps://alice@127.0.0.1:${dc.server.imapsPort}`, folders: {} }));
    const r = await backup(root);
    assert.equal(r.status, 0, r.stderr);
    await assertArchiveExact(root);
  });
});
