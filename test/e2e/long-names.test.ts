import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MaildirSource } from '../../src/drivers/maildir/source.js';
import { MboxSource } from '../../src/drivers/mbox/source.js';
import { silentLogger } from '../../src/log/logger.js';
import type { Source } from '../../src/sources/source.js';
import { STATE_FILE } from '../../src/state/files.js';
import { readBack } from '../helpers/archive.js';
import { runCliJson } from '../helpers/cli.js';
import { imapPeer, type PeerFolder } from '../helpers/imap-peer.js';
import { withTempDir } from '../helpers/tmpdir.js';

/**
 * Folder names too long for one file name (issue 17: ENAMETOOLONG ended every run with exit 6):
 * 300 ASCII characters, 90 CJK characters (270 bytes of UTF-8, 242 on the wire in modified
 * UTF-7) and 5,000 characters, listed by a scripted IMAP peer (test/helpers/imap-peer.ts) and
 * backed up into Maildir++, fs and mbox. Exit 0 with every message; a rerun writes nothing; the
 * archive read back by its own Source (what `restore` and `verify` read) gives every folder its
 * own name with its messages, from the state and, with the state moved away, from the archive's
 * names file alone; a rerun then finds the same places and writes nothing. A folder nested deeper than a path may be (PATH_MAX) is skipped and named
 * (exit 3); the others are archived.
 */
const LONG = ['Projects and plans for the year ahead, '.repeat(8).slice(0, 300), '漢字かな交じりの長いフォルダー名'.repeat(6).slice(0, 90), 'x'.repeat(5000)];
const body = (folder: string, i: number): Buffer =>
  Buffer.from(`Subject: ${folder.length} chars ${i}\r\nMessage-ID: <${i}.${folder.length}@names>\r\n\r\nkept in a folder of ${folder.length} characters\r\n`);
const folders: PeerFolder[] = LONG.map((name) => ({ name, messages: [1, 2].map((i) => body(name, i)) }));
const inbox = [Buffer.from('Subject: hello\r\nMessage-ID: <inbox@names>\r\n\r\nin INBOX\r\n')];

const archives = [
  { name: 'Maildir++', to: (d: string) => `maildir:${d}`, extra: [] as string[], source: (root: string): Source => new MaildirSource({ root, layout: 'maildir++', streamThreshold: 1 << 20, log: silentLogger }) },
  { name: 'Maildir fs', to: (d: string) => `maildir:${d}`, extra: ['--layout', 'fs'], source: (root: string): Source => new MaildirSource({ root, layout: 'fs', streamThreshold: 1 << 20, log: silentLogger }) },
  { name: 'mbox', to: (d: string) => `mbox:${d}`, extra: [] as string[], source: (root: string): Source => new MboxSource({ root, streamThreshold: 1 << 20, log: silentLogger }) },
];

const want = new Map([['INBOX', inbox.map((b) => b.toString())], ...LONG.map((n): [string, string[]] => [n, [1, 2].map((i) => body(n, i).toString()).sort()])]);

/** Every name below `dir`, for the longest one's length in bytes. */
async function longestName(dir: string): Promise<number> {
  let most = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    most = Math.max(most, Buffer.byteLength(e.name));
    if (e.isDirectory()) most = Math.max(most, await longestName(join(dir, e.name)));
  }
  return most;
}

describe('folder names longer than a file name may be', () => {
  for (const a of archives) {
    test(`${a.name}: archived under a shortened name, a rerun writes nothing, read back under the original names`, { timeout: 120_000 }, async () => {
      assert.ok(Buffer.byteLength(LONG[1] as string) === 270 && (LONG[1] as string).length === 90);
      await withTempDir('mf-long-names-', async (dir) => {
        const peer = await imapPeer({ messages: inbox, folders });
        try {
          const root = join(dir, 'archive');
          const args = ['backup', '--json', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', a.to(root), ...a.extra];
          const env = { PW: 'pw', XDG_STATE_HOME: join(dir, 'state') };
          const first = await runCliJson(args, env);
          assert.equal(first.status, 0, first.stderr);
          assert.equal(first.out['messages'], 1 + LONG.length * 2, first.stderr);
          assert.ok((await longestName(root)) <= 255);
          const again = await runCliJson(args, env);
          assert.equal(again.status, 0, again.stderr);
          assert.equal(again.out['messages'], 0, 'a rerun writes nothing');
          assert.deepEqual(await readBack(a.source(root)), want);
          // Without the state (moved away to rebuild it), the archive still names its folders.
          await rm(join(root, STATE_FILE));
          assert.deepEqual(await readBack(a.source(root)), want, 'read back without the state');
          // A rerun without the state finds the same places (the same hash) and re-matches them.
          const rebuilt = await runCliJson(args, env);
          assert.equal(rebuilt.status, 0, rebuilt.stderr);
          assert.equal(rebuilt.out['messages'], 0, 'nothing written twice');
          assert.deepEqual(await readBack(a.source(root)), want);
        } finally {
          await peer.close();
        }
      });
    });
  }

  for (const a of archives) {
    test(`${a.name}: a folder nested past PATH_MAX is skipped and named (exit 3), the others archived`, { timeout: 120_000 }, async () => {
      const deep = [...Array.from({ length: 24 }, (_, i) => `${i}`.padEnd(200, 'd')), 'leaf'].join('/');
      const boxes: PeerFolder[] = [{ name: deep, messages: [body(deep, 1)] }, ...folders.slice(0, 1)];
      await withTempDir('mf-long-names-', async (dir) => {
        const peer = await imapPeer({ messages: inbox, folders: boxes });
        try {
          const root = join(dir, 'archive');
          const r = await runCliJson(
            ['backup', '--json', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', a.to(root), ...a.extra],
            { PW: 'pw', XDG_STATE_HOME: join(dir, 'state') },
          );
          assert.equal(r.status, 3, r.stderr);
          assert.equal(r.out['messages'], 1 + 2, r.stderr);
          // The folder, and the containers above it that are too deep as well, each named.
          const skipped = r.out['skipped'] as { mailbox: string; id?: string; reason: string }[];
          assert.ok(skipped.some((s) => s.mailbox === deep));
          for (const s of skipped) {
            assert.ok(deep.startsWith(s.mailbox) && s.id === undefined, s.mailbox);
            assert.match(s.reason, /too long/);
          }
          const back = await readBack(a.source(root));
          assert.deepEqual(back.get(LONG[0] as string), want.get(LONG[0] as string));
        } finally {
          await peer.close();
        }
      });
    });
  }
});
