import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { imapPeer, type ImapPeerOptions } from '../helpers/imap-peer.js';
import { withTempDir } from '../helpers/tmpdir.js';

/**
 * A server whose UIDVALIDITY is not usable (issue 14): none at all, not a number (`abc`), zero, or
 * a number too long for imapflow (more than 19 digits). Its UIDs are trusted within one run only
 * (drivers/imap/uid-validity.ts): every run re-matches the archive by header fingerprint. The
 * scripted peer renumbers its folder between runs, as a server does after a UIDVALIDITY change,
 * and a new message takes UID 1: trusting the old UIDs would copy an archived message again and
 * miss the new one.
 */
const message = (n: number): Buffer => Buffer.from(`Subject: message ${n}\r\nMessage-ID: <m${n}@mailferry.test>\r\n\r\nbody ${n}\r\n`);
const OLD = [1, 2, 3].map(message);
const NEW = message(4);

/** The Message-IDs the archive holds, sorted (a message archived twice appears twice). */
async function archived(format: 'maildir' | 'mbox', archive: string): Promise<string[]> {
  const texts =
    format === 'mbox'
      ? [await readFile(join(archive, 'INBOX'), 'utf8')]
      : await Promise.all(
          (await Promise.all(['new', 'cur'].map(async (sub) => (await readdir(join(archive, sub))).map((f) => join(archive, sub, f))))).flat().map((f) => readFile(f, 'utf8')),
        );
  return texts.flatMap((t) => [...t.matchAll(/^Message-ID: (<[^>]+>)$/gm)].map((m) => m[1] as string)).sort();
}

describe('a server without a usable UIDVALIDITY', () => {
  const cases: { name: string; first: string; second: string }[] = [
    { name: 'none sent', first: '', second: '' },
    { name: '"abc", then "abd"', first: 'abc', second: 'abd' },
    { name: '0 (not a UIDVALIDITY: RFC 3501 nz-number)', first: '0', second: '0' },
    { name: 'a 23-digit number, unchanged', first: '99999999999999999999999', second: '99999999999999999999999' },
  ];
  for (const c of cases) {
    for (const format of ['maildir', 'mbox'] as const) {
      test(`${c.name}, into ${format}: the folder renumbered between runs, the rerun copies only the new message, nothing twice`, async () => {
        await withTempDir('mf-uidvalidity-', async (dir) => {
          const archive = join(dir, 'archive');
          const backup = async (opts: ImapPeerOptions): Promise<{ status: number | null; stderr: string }> => {
            const peer = await imapPeer(opts);
            try {
              return await runCli(
                ['backup', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `${format}:${archive}`],
                { PW: 'pw', XDG_STATE_HOME: join(dir, 'state') },
                { timeoutMs: 60_000 },
              );
            } finally {
              await peer.close();
            }
          };
          const first = await backup({ messages: OLD, uidValidity: c.first });
          assert.equal(first.status, 0, first.stderr);
          assert.deepEqual(await archived(format, archive), ['<m1@mailferry.test>', '<m2@mailferry.test>', '<m3@mailferry.test>']);
          // Renumbered: the new message is UID 1, the archived ones 2..4.
          const renumbered = { messages: [NEW, ...OLD], uids: [1, 2, 3, 4], uidValidity: c.second };
          const second = await backup(renumbered);
          assert.equal(second.status, 0, second.stderr);
          const all = ['<m1@mailferry.test>', '<m2@mailferry.test>', '<m3@mailferry.test>', '<m4@mailferry.test>'];
          assert.deepEqual(await archived(format, archive), all);
          // Unchanged since: nothing copied.
          const third = await backup(renumbered);
          assert.equal(third.status, 0, third.stderr);
          assert.deepEqual(await archived(format, archive), all);
          // Said once per run, naming the folder.
          assert.equal(first.stderr.match(/"INBOX" has no usable UIDVALIDITY/g)?.length, 1, first.stderr);
        });
      });
    }
  }
});
