import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runCli, type CliOptions } from '../helpers/cli.js';
import { peakRss } from '../helpers/peak-rss.js';
import { STATE_FILE } from '../../src/commands/archive.js';
import { imapPeer, type ImapPeerOptions } from '../helpers/imap-peer.js';
import { muttCases, skipUnlessMutt } from '../helpers/mutt.js';
import { withTempDir } from '../helpers/tmpdir.js';

/**
 * The mbox sink's re-match path (a folder without a usable UIDVALIDITY is re-matched by headers
 * on every run, issue 14) after a crash mid-append (issue 14's promise: kill -9, then a rerun,
 * nothing lost, nothing twice). A kill -9 leaves bytes past the recorded end of the file: the
 * part of a message written before the fsync. The rerun must cut them off before it appends,
 * as the trusted path does, or the next message is glued to a torn one.
 */
const run = promisify(execFile);
const muttSkip = skipUnlessMutt();

const message = (n: number): Buffer =>
  Buffer.from(`Subject: message ${n}\r\nMessage-ID: <m${n}@mailferry.test>\r\nX-Mailferry-Case: m${n}\r\n\r\nbody ${n}\r\nline two of ${n}\r\n`);
const lf = (b: Buffer): string => b.toString('latin1').replace(/\r\n/g, '\n');

/** Every message Python's mailbox.mbox finds: its Message-ID and its body. */
const READ = `
import mailbox, json, sys
box = mailbox.mbox(sys.argv[1], create=False)
print(json.dumps([{'id': m['Message-ID'], 'body': m.get_payload()} for m in box]))
`;

async function backup(dir: string, opts: ImapPeerOptions, onSpawn?: CliOptions['onSpawn']): Promise<{ status: number | null; stderr: string }> {
  const peer = await imapPeer(opts);
  try {
    return await runCli(
      ['backup', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `mbox:${join(dir, 'archive')}`],
      { PW: 'pw', XDG_STATE_HOME: join(dir, 'state') },
      { timeoutMs: 120_000, ...(onSpawn === undefined ? {} : { onSpawn }) },
    );
  } finally {
    await peer.close();
  }
}

describe('mbox re-match path after a crash mid-append', () => {
  test('a torn tail past the recorded end is cut before the rerun appends: Python and mutt read every message once, exact', async () => {
    await withTempDir('mf-mbox-rematch-', async (dir) => {
      const file = join(dir, 'archive', 'INBOX');
      const first = await backup(dir, { messages: [1, 2, 3].map(message), uidValidity: '' });
      assert.equal(first.status, 0, first.stderr);
      const committed = (await stat(file)).size;
      // What a kill -9 mid-append leaves: message 4's record as the sink writes it (From_ line,
      // metadata, message), cut halfway through its body, never recorded in the state.
      const text = await readFile(file, 'latin1');
      const last = text.slice(text.lastIndexOf('\nFrom ') + 1).replace(/3/g, '4');
      assert.ok(last.startsWith('From ') && last.includes('body 4'), last);
      await appendFile(file, Buffer.from(last.slice(0, last.indexOf('body 4') + 3), 'latin1'));
      assert.ok((await stat(file)).size > committed);
      // No usable UIDVALIDITY, renumbered: the rerun re-matches by headers, then copies 4 and 5.
      const second = await backup(dir, { messages: [5, 4, 1, 2, 3].map(message), uids: [1, 2, 3, 4, 5], uidValidity: '' });
      assert.equal(second.status, 0, second.stderr);
      const { stdout } = await run('python3', ['-c', READ, file]);
      const got = (JSON.parse(stdout) as { id: string; body: string }[]).sort((a, b) => a.id.localeCompare(b.id));
      const want = [1, 2, 3, 4, 5].map((n) => ({ id: `<m${n}@mailferry.test>`, body: lf(message(n)).split('\n\n').slice(1).join('\n\n') }));
      assert.deepEqual(got, want);
      // The file is exactly what one clean run writes: nothing of the torn record is left.
      assert.equal((await readFile(file, 'latin1')).includes('body 4\nFrom '), false);
      if (muttSkip === false) {
        const cases = await muttCases(file, { all: '~A' });
        assert.deepEqual(cases['all'], ['m1', 'm2', 'm3', 'm4', 'm5']);
      }
    });
  });

  test('without our state (lost after the crash), the torn record is kept as found and what follows is framed: every new message exact, once', async () => {
    await withTempDir('mf-mbox-rematch-', async (dir) => {
      const file = join(dir, 'archive', 'INBOX');
      const first = await backup(dir, { messages: [1, 2, 3].map(message), uidValidity: '7' });
      assert.equal(first.status, 0, first.stderr);
      const text = await readFile(file, 'latin1');
      const last = text.slice(text.lastIndexOf('\nFrom ') + 1).replace(/3/g, '4');
      await appendFile(file, Buffer.from(last.slice(0, last.indexOf('body 4') + 3), 'latin1'));
      await rm(join(dir, 'archive', STATE_FILE));
      const second = await backup(dir, { messages: [1, 2, 3, 4, 5].map(message), uidValidity: '7' });
      assert.equal(second.status, 0, second.stderr);
      const { stdout } = await run('python3', ['-c', READ, file]);
      const got = (JSON.parse(stdout) as { id: string; body: string }[]).sort((a, b) => a.id.localeCompare(b.id) || a.body.localeCompare(b.body));
      const exact = (n: number): { id: string; body: string } => ({ id: `<m${n}@mailferry.test>`, body: lf(message(n)).split('\n\n').slice(1).join('\n\n') });
      // Without the state nothing tells a torn record from a foreign message: it stays, framed.
      assert.deepEqual(got, [exact(1), exact(2), exact(3), { id: '<m4@mailferry.test>', body: 'bod\n' }, exact(4), exact(5)]);
    });
  });

  test('the re-match streams: a 30 MB archived message is indexed, never held (peak RSS of the rerun)', async () => {
    await withTempDir('mf-mbox-rematch-', async (dir) => {
      const big = Buffer.concat([Buffer.from('Subject: big\r\nMessage-ID: <big@mailferry.test>\r\n\r\n'), Buffer.alloc(30 * 1024 * 1024, 'From a line mboxrd quotes\r\nand another one\r\n')]);
      const messages = [message(1), big, message(2)];
      const first = await backup(dir, { messages, uidValidity: '' });
      assert.equal(first.status, 0, first.stderr);
      const rss = peakRss();
      const second = await backup(dir, { messages, uidValidity: '' }, rss.watch);
      const peak = rss.stop();
      process.stderr.write(`peak RSS of an mbox re-match with a 30 MB message archived: ${peak.toFixed(1)} MiB\n`);
      assert.equal(second.status, 0, second.stderr);
      const { stdout } = await run('python3', ['-c', READ, join(dir, 'archive', 'INBOX')], { maxBuffer: 1 << 27 });
      assert.deepEqual((JSON.parse(stdout) as { id: string }[]).map((m) => m.id), ['<m1@mailferry.test>', '<big@mailferry.test>', '<m2@mailferry.test>'], 'matched, nothing copied twice');
      assert.ok(peak > 0 && peak < 100, `peak RSS ${peak.toFixed(1)} MiB`);
    });
  });
});
