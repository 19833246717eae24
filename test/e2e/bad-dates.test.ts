import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { imapPeer } from '../helpers/imap-peer.js';
import { withTempDir } from '../helpers/tmpdir.js';

/**
 * A bad INTERNALDATE is a message's problem, never a folder or run failure (issue 17): the
 * message is archived with the fallback drivers/archive-date.ts documents (its Date: header, else
 * the time of the backup) and a warning; exit 0. mbox's From_ line stays a real date.
 */
const DATED = new Date('2024-01-02T03:04:05Z');
const messages = [
  Buffer.from(`Date: Tue, 02 Jan 2024 03:04:05 +0000\r\nSubject: dated\r\nMessage-ID: <d@mailferry.test>\r\n\r\nbody\r\n`),
  Buffer.from(`Subject: undated\r\nMessage-ID: <u@mailferry.test>\r\n\r\nbody\r\n`),
];

describe('a bad INTERNALDATE', () => {
  for (const bad of ['garbage', '31-Feb-2020 99:99:99 +9999']) {
    for (const format of ['maildir', 'mbox'] as const) {
      test(`${JSON.stringify(bad)} into ${format}: exit 0, archived with the Date: header or the backup time, a warning`, async () => {
        const peer = await imapPeer({ messages, internalDate: bad });
        try {
          await withTempDir('mf-bad-date-', async (dir) => {
            const archive = join(dir, 'archive');
            const started = Date.now();
            const r = await runCli(
              ['backup', '--from', `imap://alice@127.0.0.1:${peer.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `${format}:${archive}`],
              { PW: 'pw', XDG_STATE_HOME: join(dir, 'state') },
              { timeoutMs: 60_000 },
            );
            assert.equal(r.status, 0, r.stderr);
            assert.match(r.stderr, /INTERNALDATE/);
            if (format === 'maildir') {
              const files = await readdir(join(archive, 'new'));
              assert.equal(files.length, 2);
              const mtimes = await Promise.all(files.map(async (f) => ({ body: await readFile(join(archive, 'new', f), 'utf8'), mtime: (await stat(join(archive, 'new', f))).mtimeMs })));
              const dated = mtimes.find((m) => m.body.includes('Subject: dated'));
              const undated = mtimes.find((m) => m.body.includes('Subject: undated'));
              assert.equal(dated?.mtime, DATED.getTime());
              assert.ok((undated?.mtime ?? 0) >= started - 2000, 'the time of the backup');
            } else {
              const text = await readFile(join(archive, 'INBOX'), 'utf8');
              const froms = text.split('\n').filter((l) => l.startsWith('From '));
              assert.equal(froms.length, 2);
              assert.equal(froms[0], 'From MAILER-DAEMON Tue Jan  2 03:04:05 2024');
              for (const l of froms) assert.doesNotMatch(l, /undefined|NaN/);
            }
          });
        } finally {
          await peer.close();
        }
      });
    }
  }
});
