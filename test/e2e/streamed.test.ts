/**
 * A large message (over the 8 MiB stream threshold) goes from the IMAP source to the archive as a
 * stream. What may go wrong on the way, and what must come of it (issue 14):
 *
 * - the connection is cut while the body streams: an error of the source (retried), never one of
 *   the archive; the message resumes from the bytes already received (`BODY.PEEK[]<offset.length>`),
 *   so a link that drops every connection after 5 MB still finishes in one run, byte-exact;
 * - the archive cannot take the file (a per-file size limit, `ulimit -f`): exit 6 within seconds,
 *   naming the folder, nothing left in tmp/ (or past the mbox's recorded end), and a rerun without
 *   the limit is exact;
 * - SIGTERM while the body streams: the process ends within a few seconds (exit 130), the lock is
 *   released, and a rerun is exact.
 *
 * Dovecot on loopback; the poor link is a proxy in front of it (test/helpers/cut-proxy.ts).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { LOCK_FILE, STATE_FILE } from '../../src/commands/archive.js';
import { toLf } from '../../src/formats/fingerprint.js';
import { randomBytes, smallMessages } from '../fixtures/nasty.js';
import { readMaildirFolder, readMboxFile } from '../helpers/archive.js';
import { runCli, type CliOptions, type CliResult } from '../helpers/cli.js';
import { linkProxy, type LinkOptions, type LinkProxy } from '../helpers/cut-proxy.js';
import { fetchAll, withDovecot } from '../helpers/server.js';

/** A message of about 20 MB: base64 lines of random bytes. */
function largeMessage(mb: number, seed: number): { raw: Buffer } {
  const body = randomBytes(Math.floor((mb * 1_000_000 * 3) / 4), seed).toString('base64').replace(/.{76}/g, '$&\r\n');
  return { raw: Buffer.from(`Subject: large ${seed}\r\nMessage-ID: <large-${seed}@streamed.test>\r\nContent-Transfer-Encoding: base64\r\n\r\n${body}\r\n`) };
}

const large = largeMessage(20, 7);
const inbox = [...smallMessages(20, 71), large, ...smallMessages(10, 72)];
const LARGE_SIZE = large.raw.length;
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: inbox }] });

async function fresh(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'mf-streamed-'));
}

function backup(port: number, to: string, root: string, extra: string[] = [], opts: CliOptions = {}): Promise<CliResult> {
  return runCli(
    ['backup', '--from', `imap://alice@127.0.0.1:${port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', to, ...extra],
    { PW: dc.alice.password, XDG_STATE_HOME: path.join(root, 'state') },
    { timeoutMs: 120_000, ...opts },
  );
}

const show = (r: CliResult): string => `exit ${String(r.status)} ${String(r.signal)} after ${r.ms} ms\nstdout: ${r.stdout}\nstderr: ${r.stderr.split('\n').filter((l) => !l.startsWith('imap {')).join('\n').slice(-4000)}`;

/** The archive's INBOX holds exactly the server's INBOX, byte for byte (LF). */
async function assertExact(format: 'maildir' | 'mbox', dir: string): Promise<void> {
  const want = (await fetchAll(dc.server, dc.alice, 'INBOX')).map((m) => toLf(m.raw));
  const got =
    format === 'maildir'
      ? (await readMaildirFolder(dir)).map((m) => m.body)
      : (await readMboxFile(path.join(dir, 'INBOX'), dir, 'INBOX', `imap://alice@127.0.0.1:${dc.server.imapPort}`)).map((m) => m.body);
  assert.equal(got.length, want.length, 'message count');
  for (const w of want) assert.ok(got.some((g) => g.equals(w)), `a message of ${w.length} bytes is missing or differs`);
}

/** Offsets of the partial body fetches (`BODY.PEEK[]<offset.length>`) in FETCH command lines. */
function partialOffsets(lines: readonly string[]): number[] {
  return lines.flatMap((l) => [...l.matchAll(/BODY\.PEEK\[\]<(\d+)\.\d+>/gi)].map((m) => Number(m[1])));
}

/** A backup through a poor link into a fresh Maildir: exit 0 and byte-exact, then `check` sees the link and the run. */
async function throughLink(opts: LinkOptions, extra: string[], check: (link: LinkProxy, r: CliResult) => void): Promise<void> {
  const link = await linkProxy(dc.server.imapPort, opts);
  const root = await fresh();
  try {
    const r = await backup(link.port, `maildir:${root}`, root, extra);
    assert.equal(r.status, 0, show(r));
    await assertExact('maildir', root);
    check(link, r);
  } finally {
    await link.close();
    await rm(root, { recursive: true, force: true });
  }
}

describe('a large message streamed from IMAP', { skip: dc.skip, concurrency: false }, () => {
  test('a link that drops every connection after 5 MB: one run, exit 0, byte-exact, resumed (never from 0 again)', { timeout: 180_000 }, async (t) => {
    await throughLink({ cutAfter: 5_000_000 }, ['--debug'], (link, r) => {
      t.diagnostic(`${link.cuts} cuts, ${link.bytes} bytes through the link, ${r.ms} ms`);
      assert.ok(link.cuts >= 3, `${link.cuts} cuts: the link did not drop the streams`);
      const starts = link.fetches.flatMap(partialOffsets);
      assert.equal(starts.filter((o) => o === 0).length, 1, `the large message was asked from offset 0 more than once: ${starts.join(' ')}`);
      // Nothing fetched twice beyond what a cut lost: the server sent little more than the mailbox.
      const total = inbox.reduce((n, m) => n + m.raw.length, 0);
      assert.ok(link.bytes < total + link.cuts * (2 << 20), `${link.bytes} bytes through the link for ${total} bytes of mail`);
    });
  });

  test('a cut mid-literal of the large message: the next connection resumes with a partial fetch from where it stopped', { timeout: 120_000 }, async () => {
    // The first connection carries the listing, the small messages and 12 MB of the large one.
    await throughLink({ cutAfter: 12_000_000 }, ['--connections', '1'], (link, r) => {
      assert.equal(link.cuts, 1, show(r));
      const [first, ...later] = link.fetches;
      const before = Math.max(...partialOffsets(first ?? []));
      const resumed = later.flatMap(partialOffsets);
      assert.ok(before > 8_000_000, `the first connection got to ${before}`);
      assert.ok(resumed.length > 0 && (resumed[0] as number) >= before, `resumed at ${resumed.join(' ')} after ${before} on the first connection`);
      assert.ok(!resumed.includes(0), 'asked for the whole message again');
    });
  });

  test('a cut in the middle of a batch of small messages: those before it are kept, the retry asks only for the rest', { timeout: 120_000 }, async (t) => {
    // 20 KB into the first connection: after the listing, within the batch of small bodies.
    await throughLink({ cutAfter: 20_000, times: 1 }, ['--connections', '1'], (link, r) => {
      assert.equal(link.cuts, 1, show(r));
      const bodies = (lines: readonly string[] | undefined): string[] => (lines ?? []).filter((l) => /BODY\.PEEK\[\](?!<)/i.test(l));
      const [first, ...later] = link.fetches;
      const asked = bodies(first);
      const again = later.flatMap(bodies);
      t.diagnostic(`first connection: ${asked.join(' | ')}; after the cut: ${again.join(' | ')}`);
      assert.match(asked[0] ?? '', /UID FETCH 1:/i, 'the first batch starts at UID 1');
      assert.ok(again.length > 0, 'no retry of the batch');
      assert.doesNotMatch(again[0] ?? '', /UID FETCH 1[:,\s]/i, `the retry asked for the first message again: ${again[0] ?? ''}`);
    });
  });

  test('a message whose fetch always drops the connection: the batch is halved down to it, it alone is skipped (exit 3), the rest archived', { timeout: 150_000 }, async (t) => {
    const uids = (set: string): number[] =>
      set.split(',').flatMap((r) => {
        const [a, b] = r.split(':').map(Number) as [number, number | undefined];
        return Array.from({ length: (b ?? a) - a + 1 }, (_, i) => a + i);
      });
    // UID 7's body kills the connection, whatever else the UID FETCH asks for.
    const poison = (l: string): boolean => {
      const m = /UID FETCH (\S+) \(.*BODY\.PEEK\[\](?!<)/i.exec(l);
      return m !== null && uids(m[1] as string).includes(7);
    };
    const link = await linkProxy(dc.server.imapPort, { dropOn: poison });
    const root = await fresh();
    try {
      const r = await backup(link.port, `maildir:${root}`, root, ['--connections', '1']);
      const asked = link.fetches.flat().filter((l) => /BODY\.PEEK\[\](?!<)/i.test(l)).map((l) => /UID FETCH (\S+)/i.exec(l)?.[1]);
      t.diagnostic(`exit ${String(r.status)} in ${r.ms} ms; body fetches: ${asked.join(' ')}`);
      assert.equal(r.status, 3, show(r));
      assert.match(r.stderr, /skipped INBOX message 7: fetching it failed/, show(r));
      const want = (await fetchAll(dc.server, dc.alice, 'INBOX')).filter((m) => m.uid !== 7).map((m) => toLf(m.raw));
      const got = (await readMaildirFolder(root)).map((m) => m.body);
      assert.equal(got.length, want.length, show(r));
      for (const w of want) assert.ok(got.some((g) => g.equals(w)), 'a message other than UID 7 is missing');
    } finally {
      await link.close();
      await rm(root, { recursive: true, force: true });
    }
  });

  for (const format of ['maildir', 'mbox'] as const) {
    test(`${format}: a per-file size limit smaller than the message (ulimit -f): exit 6 within seconds, nothing left behind, a rerun is exact`, { timeout: 180_000 }, async (t) => {
      const root = await fresh();
      const archive = path.join(root, 'archive');
      try {
        // bash counts ulimit -f in KiB: 10 MiB, half the large message.
        const r = await backup(dc.server.imapPort, `${format}:${archive}`, root, [], { prefix: ['bash', '-c', 'ulimit -f 10240; exec "$0" "$@"'], timeoutMs: 60_000 });
        assert.equal(r.status, 6, show(r));
        t.diagnostic(`exit 6 after ${r.ms} ms: ${r.stderr.trim()}`);
        assert.ok(r.ms < 20_000, show(r));
        assert.match(r.stderr, format === 'maildir' ? /cannot write folder .*archive.*: file too large/ : /cannot write mbox .*INBOX.*: file too large/, show(r));
        assert.ok(!existsSync(path.join(archive, LOCK_FILE)), 'lock left behind');
        if (format === 'maildir') assert.deepEqual(await readdir(path.join(archive, 'tmp')), [], 'left in tmp/');
        else assert.ok((await stat(path.join(archive, 'INBOX'))).size < LARGE_SIZE / 2, 'the mbox was not cut back');
        const again = await backup(dc.server.imapPort, `${format}:${archive}`, root);
        assert.equal(again.status, 0, show(again));
        await assertExact(format, archive);
        assert.ok(existsSync(path.join(archive, STATE_FILE)));
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    });
  }

  test('SIGTERM while the large message streams: ends within a few seconds, exit 130, lock released, a rerun is exact', { timeout: 120_000 }, async (t) => {
    const link = await linkProxy(dc.server.imapPort, { bytesPerSecond: 2_000_000 });
    const root = await fresh();
    try {
      let killedAt = 0;
      const r = await backup(link.port, `maildir:${root}`, root, [], {
        onSpawn: (child) => {
          const watch = setInterval(() => {
            void readdir(path.join(root, 'tmp'))
              .then(async (names) => {
                for (const n of names) {
                  if (((await stat(path.join(root, 'tmp', n)).catch(() => undefined))?.size ?? 0) > 2_000_000) {
                    if (killedAt === 0) {
                      killedAt = Date.now();
                      child.kill('SIGTERM');
                    }
                    clearInterval(watch);
                  }
                }
              })
              .catch(() => undefined);
          }, 100);
          child.once('exit', () => clearInterval(watch));
        },
      });
      assert.ok(killedAt > 0, `never saw the large message in tmp/: ${show(r)}`);
      const took = Date.now() - killedAt;
      t.diagnostic(`ended ${took} ms after SIGTERM`);
      assert.ok(took < 5_000, `ended ${took} ms after SIGTERM: ${show(r)}`);
      assert.equal(r.status, 130, show(r));
      assert.ok(!existsSync(path.join(root, LOCK_FILE)), 'lock left behind');
      const again = await backup(dc.server.imapPort, `maildir:${root}`, root);
      assert.equal(again.status, 0, show(again));
      await assertExact('maildir', root);
      assert.deepEqual(await readdir(path.join(root, 'tmp')), []);
    } finally {
      await link.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
