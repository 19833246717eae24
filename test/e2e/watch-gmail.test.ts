/**
 * Gmail mode with `--watch`, against the Gmail stand-in (test/helpers/gmail-peer.ts, with IDLE):
 * a message that arrives while the backup watches is archived once, in All Mail, and shown in each
 * of its label folders (hard links): seen by the IDLE on INBOX when it carries \Inbox (the pass of
 * a label folder brings All Mail), and by an IDLE on All Mail (`--watch-folders`) when it skips the
 * inbox.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gmailMailbox, gmailPeer, type GmailPeer } from '../helpers/gmail-peer.js';
import { startWatch, stopBetweenPasses } from '../helpers/watch.js';

let root: string;
let peer: GmailPeer;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mf-watch-gmail-'));
  peer = await gmailPeer({ messages: gmailMailbox() });
});
after(async () => {
  await peer.close();
  await rm(root, { recursive: true, force: true });
});

const ALL = '.[Gmail].All Mail';

/** Inodes of the files in a Maildir folder whose Message-ID is `id`. */
async function inodes(dir: string, id: string): Promise<number[]> {
  const out: number[] = [];
  for (const sub of ['cur', 'new']) {
    for (const f of await readdir(join(dir, sub)).catch(() => [] as string[])) {
      if ((await readFile(join(dir, sub, f), 'utf8')).includes(`Message-ID: ${id}\n`)) out.push((await stat(join(dir, sub, f))).ino);
    }
  }
  return out;
}

describe('Gmail mode with --watch', () => {
  test('a message arriving while watching is archived once with its labels, via INBOX or All Mail', { timeout: 60_000 }, async () => {
    const md = join(root, 'md');
    const w = startWatch(
      ['backup', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `maildir:${md}`, '--json', '--watch', '--watch-folders', '[Gmail]/All Mail', '--watch-heartbeat', '1s'],
      { PW: 'pw', XDG_STATE_HOME: join(root, 'state') },
    );
    try {
      await w.until((e) => e['type'] === 'pass' && e['full'] === true);
      await w.until((e) => e['type'] === 'heartbeat' && e['live'] === 2, 10_000);
      const arrivals: [string, string[], string[]][] = [
        ['<w1@gmail.test>', ['\\Inbox', 'Work'], ['', '.Work']],
        ['<w2@gmail.test>', ['Reisen/Köln 2024'], ['.Reisen.Köln 2024']],
      ];
      for (const [id, labels, shown] of arrivals) {
        const from = w.events.length;
        const sent = Date.now();
        peer.deliver({ raw: Buffer.from(`Message-ID: ${id}\r\nSubject: watched\r\n\r\nbody\r\n`), labels });
        await w.until((e) => e['type'] === 'message', 10_000, from);
        assert.ok(Date.now() - sent < 5_000, `${id}: archived ${Date.now() - sent} ms after it arrived`);
        const files = await inodes(join(md, ALL), id);
        assert.equal(files.length, 1, `${id}: once in All Mail`);
        for (const folder of shown) assert.deepEqual(await inodes(join(md, folder), id), files, `${id}: shown in ${folder === '' ? 'INBOX' : folder} as a link to the All Mail file`);
      }
      const events = w.events.filter((e) => e['type'] === 'message');
      assert.deepEqual(
        events.slice(-2).map((e) => e['mailbox']),
        ['[Gmail]/All Mail', '[Gmail]/All Mail'],
        'each arrival copied once, from All Mail',
      );
    } finally {
      assert.equal((await stopBetweenPasses(w)).status, 0, w.stderr());
    }
  });
});
