import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { seedMailbox } from '../../scripts/dev/seed.js';
import { toLf } from '../../src/formats/fingerprint.js';
import { nastyMailbox, pop3View, prng, smallMessages } from '../fixtures/nasty.js';
import { readMaildirFolder, readMboxFile } from '../helpers/archive.js';
import { lastJson, runCli } from '../helpers/cli.js';
import { connect, withDovecot } from '../helpers/server.js';

/** `backup --from pop3s://` and `pop3://` (STLS) into Maildir and mbox, incremental, with --delete. */
const inbox = nastyMailbox().find((f) => f.path === 'INBOX')?.messages ?? [];
const bob = { name: 'bob', password: 'bob-secret' };
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: inbox }], users: [bob] });

async function serverCount(user: { name: string; password: string }): Promise<number> {
  const c = await connect(dc.server, user);
  const st = await c.status('INBOX', { messages: true });
  await c.logout();
  return st === false ? -1 : (st.messages ?? -1);
}

function args(user: string, root: string, extra: string[] = [], scheme = 'pop3s'): string[] {
  const port = scheme === 'pop3s' ? dc.server.pop3sPort : dc.server.pop3Port;
  return ['backup', '--json', '--from', `${scheme}://${user}@127.0.0.1:${port}`, '--ca', dc.server.caFile, '--password-env', 'PW',
    '--to', `maildir:${join(root, 'md')}`, '--to', `mbox:${join(root, 'mbox')}`, ...extra];
}

const caseOf = (b: Buffer): string => /X-Mailferry-Case: ([^\r\n]*)/.exec(b.toString('latin1'))?.[1] ?? '';
const idOf = (b: Buffer): string => /Message-ID: (<[^>]*>)/i.exec(b.toString('latin1'))?.[1] ?? '';

describe('backup from POP3', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-pop3-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('every message byte-exact in Maildir new/ and in mbox; rerun copies nothing; one new copies one', async () => {
    const r = await runCli(args('alice', root), { PW: dc.alice.password });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((lastJson(r.stdout) as unknown as { messages: number }).messages, inbox.length);
    const md = await readMaildirFolder(join(root, 'md'));
    const mbox = await readMboxFile(join(root, 'mbox', 'INBOX'), join(root, 'mbox'), 'INBOX', `pop3s://alice@127.0.0.1:${dc.server.pop3sPort}`);
    for (const [name, got] of [['maildir', md], ['mbox', mbox]] as const) {
      assert.equal(got.length, inbox.length, `${name} count`);
      for (const m of inbox) {
        const want = toLf(pop3View(m.raw));
        assert.ok(got.some((g) => g.body.equals(want)), `${name}: ${caseOf(m.raw)} byte-exact`);
      }
    }
    assert.ok(md.every((m) => m.flags.size === 0 && m.uid !== undefined), 'new mail in new/, UIDL in the name');
    assert.equal(await serverCount(dc.alice), inbox.length, 'kept on the server without --delete');

    const again = await runCli(args('alice', root, [], 'pop3'), { PW: dc.alice.password });
    assert.equal(again.status, 0, again.stderr);
    assert.equal((lastJson(again.stdout) as unknown as { messages: number }).messages, 0, 'STLS run, same archive: nothing new');

    await seedMailbox(dc.server, dc.alice, [{ path: 'INBOX', messages: smallMessages(1, 31) }]);
    const one = await runCli(args('alice', root), { PW: dc.alice.password });
    assert.equal((lastJson(one.stdout) as unknown as { messages: number }).messages, 1);
    assert.equal((await readMaildirFolder(join(root, 'md'))).length, inbox.length + 1);
  });

  test('--delete removes only what is archived, after the copy', async () => {
    const r = await runCli(args('alice', root, ['--delete']), { PW: dc.alice.password });
    assert.equal(r.status, 0, r.stderr);
    const summary = lastJson(r.stdout) as unknown as { messages: number; deleted: number };
    assert.deepEqual([summary.messages, summary.deleted], [0, inbox.length + 1]);
    assert.equal(await serverCount(dc.alice), 0);
    assert.equal((await readMaildirFolder(join(root, 'md'))).length, inbox.length + 1);
  });

  test('--delete on an IMAP source is a usage error', async () => {
    const r = await runCli(['backup', '--from', 'imaps://alice@127.0.0.1:1', '--password-env', 'PW', '--to', `maildir:${root}/x`, '--delete'], { PW: 'x' });
    assert.equal(r.status, 2);
  });

  test('--delete with kill -9 at random moments: every message ever on the server archived exactly once', async () => {
    const crashRoot = await mkdtemp(join(tmpdir(), 'mf-pop3-crash-'));
    const next = prng(4242);
    const all = smallMessages(1500, 12);
    const expected = new Set(all.map((m) => idOf(m.raw)));
    try {
      await seedMailbox(dc.server, bob, [{ path: 'INBOX', messages: all.slice(0, 1000) }]);
      let killed = 0;
      for (let trial = 0; trial < 6; trial++) {
        if (trial === 3) await seedMailbox(dc.server, bob, [{ path: 'INBOX', messages: all.slice(1000) }]);
        const child = spawn(process.execPath, [resolve('bin/mailferry.js'), ...args('bob', crashRoot, ['--delete'])], {
          env: { ...process.env, PW: bob.password },
          stdio: 'ignore',
        });
        const done = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
        const winner = await Promise.race([done, new Promise<'t'>((r) => setTimeout(() => r('t'), 100 + (next() % 700)))]);
        if (winner === 't') {
          child.kill('SIGKILL');
          killed++;
        }
        await done;
      }
      assert.ok(killed >= 2, `killed ${killed} runs mid-way`);
      const final = await runCli(args('bob', crashRoot, ['--delete']), { PW: bob.password });
      assert.equal(final.status, 0, final.stderr);
      assert.equal(await serverCount(bob), 0, 'all deleted in the end');
      for (const kind of ['md', 'mbox']) {
        const got =
          kind === 'md'
            ? await readMaildirFolder(join(crashRoot, 'md'))
            : await readMboxFile(join(crashRoot, 'mbox', 'INBOX'), join(crashRoot, 'mbox'), 'INBOX', `pop3s://bob@127.0.0.1:${dc.server.pop3sPort}`);
        const ids = got.map((g) => idOf(g.body));
        assert.equal(ids.length, expected.size, `${kind}: count`);
        assert.deepEqual(new Set(ids), expected, `${kind}: every message once`);
      }
    } finally {
      await rm(crashRoot, { recursive: true, force: true });
    }
  });
});
