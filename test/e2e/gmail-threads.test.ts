import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runCliJson, type JsonResult } from '../helpers/cli.js';
import { gmailPeer, type GmailMessage } from '../helpers/gmail-peer.js';

/**
 * Gmail to Gmail keeps threads as far as IMAP allows: X-GM-THRID is read-only, and Gmail groups
 * appended mail by itself (the stand-in: by References / In-Reply-To, test/helpers/gmail-peer.ts).
 * A conversation Gmail had joined on other grounds (the same Subject, no References) comes apart
 * on the target; the run says so (a warning, `threadsSplit` in --json) and still exits 0.
 */
const msg = (id: string, thread: string, subject: string, refs: string[] = []): GmailMessage => ({
  raw: Buffer.from(
    `Message-ID: <${id}@gmail.test>\r\nSubject: ${subject}\r\n` +
      (refs.length === 0 ? '' : `In-Reply-To: <${refs.at(-1) ?? ''}@gmail.test>\r\nReferences: ${refs.map((r) => `<${r}@gmail.test>`).join('\r\n ')}\r\n`) +
      `\r\nbody ${id}\r\n`,
  ),
  labels: ['\\Inbox'],
  thread,
});

/** A thread of three linked by References, and a single message. */
const linked = (): GmailMessage[] => [
  msg('a1', '1700000000000000001', 'Plans'),
  msg('a2', '1700000000000000001', 'Re: Plans', ['a1']),
  msg('c1', '1700000000000000003', 'Alone'),
  msg('a3', '1700000000000000001', 'Re: Plans', ['a1', 'a2']),
];

/** Plus two messages Gmail had joined by their Subject alone (no References). */
const bySubject = (): GmailMessage[] => [...linked(), msg('b1', '1700000000000000002', 'Lunch'), msg('b2', '1700000000000000002', 'Lunch')];

async function migrate(box: GmailMessage[]): Promise<{ r: JsonResult; threads: Map<string, string>; log: string }> {
  const source = await gmailPeer({ messages: box });
  const target = await gmailPeer({ messages: [] });
  const root = await mkdtemp(join(tmpdir(), 'mf-gmail-threads-'));
  try {
    const r = await runCliJson(
      [
        'migrate', '--json',
        '--from', `imap://alice@127.0.0.1:${source.port}`, '--tls-mode', 'plain', '--password-env', 'PW',
        '--to', `imap://bob@127.0.0.1:${target.port}`, '--target-tls-mode', 'plain', '--target-password-env', 'PW',
        '--log-file', join(root, 'run.log'),
      ],
      { PW: 'pw', XDG_STATE_HOME: join(root, 'state') },
    );
    const threads = new Map(target.messages.map((m) => [/Message-ID: <([^@]+)@/.exec(m.raw.toString())?.[1] ?? '', m.thread ?? '']));
    return { r, threads, log: await readFile(join(root, 'run.log'), 'utf8') };
  } finally {
    await source.close();
    await target.close();
    await rm(root, { recursive: true, force: true });
  }
}

test('Gmail to Gmail: a conversation joined by Subject alone is split on the target, said in the log and as threadsSplit; exit 0', async () => {
  const { r, threads, log } = await migrate(bySubject());
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.out['messages'], 6);
  assert.equal(threads.get('a2'), threads.get('a1'), 'the stand-in joins by References');
  assert.equal(threads.get('a3'), threads.get('a1'));
  assert.notEqual(threads.get('b2'), threads.get('b1'), 'and not by Subject');
  assert.equal(r.out['threadsSplit'], 1);
  assert.match(r.stderr, /Gmail threads: 1 of 3 conversations were split on the target \(IMAP cannot set a thread/);
  assert.match(log, /warn: Gmail threads: 1 of 3 conversations were split/);
  assert.match(log, /6 messages copied \(0\.0 MB\), 1 of 3 Gmail conversations split,/, 'and the summary says it');
});

test('Gmail to Gmail: threads linked by References are all kept; no threadsSplit', async () => {
  const { r, threads, log } = await migrate(linked());
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.out['messages'], 4);
  assert.equal(new Set(threads.values()).size, 2);
  assert.equal(r.out['threadsSplit'], undefined);
  assert.doesNotMatch(r.stderr, /split on the target/);
  assert.match(log, /info: Gmail threads: all 2 conversations kept/);
});

for (const kind of ['maildir', 'mbox'] as const) {
  test(`restore of a Gmail-mode ${kind} archive into Gmail: the same split said, from the thread ids the archive kept`, async () => {
    const source = await gmailPeer({ messages: bySubject() });
    const target = await gmailPeer({ messages: [] });
    const root = await mkdtemp(join(tmpdir(), 'mf-gmail-threads-'));
    const archive = `${kind}:${join(root, 'archive')}`;
    try {
      const b = await runCli(['backup', '--from', `imap://alice@127.0.0.1:${source.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', archive], {
        PW: 'pw',
        XDG_STATE_HOME: join(root, 'state'),
      });
      assert.equal(b.status, 0, b.stderr);
      const r = await runCliJson(['restore', '--json', '--from', archive, '--to', `imap://bob@127.0.0.1:${target.port}`, '--tls-mode', 'plain', '--password-env', 'PW'], {
        PW: 'pw',
        XDG_STATE_HOME: join(root, 'state'),
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.out['messages'], 6);
      assert.equal(r.out['threadsSplit'], 1);
      assert.match(r.stderr, /Gmail threads: 1 of 3 conversations were split/);
    } finally {
      await source.close();
      await target.close();
      await rm(root, { recursive: true, force: true });
    }
  });
}
