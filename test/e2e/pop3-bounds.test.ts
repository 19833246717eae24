import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import { peakRss } from '../helpers/peak-rss.js';
import { withTempDir } from '../helpers/tmpdir.js';
import { endless, fakeServer, standard, type Mailbox } from '../helpers/pop3-peer.js';
import type net from 'node:net';

/**
 * A hostile POP3 server (issue 17): a RETR that never ends is cut at its LIST size plus a small
 * tolerance (drivers/pop3/reader.ts retrLimit), that message is skipped and reported (exit 3),
 * its partial file removed, the others archived, and the peak RSS of the run stays under the
 * issue's 150 MB (measured, 5 runs: 77-78 MB held in memory, 106-108 MB streamed to disk); odd
 * UIDLs (a space, 70 '%' signs, 250 characters) are archived under safe names, exit 0.
 */
const messages = [1, 2, 3].map((i) => Buffer.from(`Subject: m${i}\r\nMessage-ID: <m${i}@mailferry.test>\r\n\r\nbody ${i}\r\n`));
const RSS_LIMIT_KB = 150 * 1024;

async function archived(dir: string, sub: string): Promise<string[]> {
  return readdir(join(dir, sub)).catch(() => []);
}

/** Run a backup against `box` (with `override`), sampling the child's peak RSS (VmHWM, kB). */
async function run(box: Mailbox, override: ((line: string, sock: net.Socket) => boolean) | undefined, dir: string): Promise<{ r: CliResult; peakKb: number }> {
  const fake = await fakeServer(standard({ messages, ...box }, override));
  const rss = peakRss();
  try {
    const r = await runCli(
      ['backup', '--from', `pop3://alice@127.0.0.1:${fake.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `maildir:${dir}`, '--json'],
      { PW: 'pw', XDG_STATE_HOME: join(dir, '.xdg') },
      { timeoutMs: 90_000, onSpawn: rss.watch },
    );
    return { r, peakKb: Math.round(rss.stop() * 1024) };
  } finally {
    rss.stop();
    await fake.close();
  }
}

function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  return withTempDir('mf-pop3-bounds-', fn);
}

/** RETR 2 answers +OK and then sends `chunk` for ever; LIST says message 2 has `listSize` bytes. */
function endlessRetr(listSize: number, chunk: Buffer): (line: string, sock: net.Socket) => boolean {
  return (line, sock) => {
    if (line === 'LIST') {
      sock.write(`+OK\r\n${messages.map((m, i) => `${i + 1} ${i === 1 ? listSize : m.length}\r\n`).join('')}.\r\n`);
      return true;
    }
    if (line !== 'RETR 2') return false;
    sock.write('+OK\r\n');
    endless(sock, chunk);
    return true;
  };
}

describe('POP3 server sending more than it announced', () => {
  for (const [name, listSize] of [
    ['a small message (held in memory)', messages[1]?.length ?? 0],
    ['a large message (streamed to disk)', 9 << 20],
  ] as const) {
    test(`an endless RETR of ${name}: exit 3, the others archived, no partial file, peak RSS bounded`, { timeout: 120_000 }, async (t) => {
      await withDir(async (dir) => {
        const { r, peakKb } = await run({}, endlessRetr(listSize, Buffer.alloc(64 << 10, 'x\r\n')), dir);
        assert.equal(r.status, 3, r.stderr);
        const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { skipped?: { id?: string; reason: string }[] };
        assert.equal(summary.skipped?.length, 1, r.stdout);
        assert.equal(summary.skipped?.[0]?.id, 'u2');
        assert.match(summary.skipped?.[0]?.reason ?? '', /larger than announced/);
        assert.equal((await archived(dir, 'new')).length, 2);
        assert.deepEqual(await archived(dir, 'tmp'), [], 'the partial file is removed');
        t.diagnostic(`peak RSS ${peakKb} kB`);
        assert.ok(peakKb > 0 && peakKb < RSS_LIMIT_KB, `peak RSS ${peakKb} kB`);
      });
    });
  }
});

describe('POP3 UIDLs outside RFC 1939 §7', () => {
  test('a space, 70 % signs, 250 characters: archived under safe names, exit 0, a rerun adds nothing', async () => {
    const uidls = ['a b', '%'.repeat(70), 'x'.repeat(250)];
    await withDir(async (dir) => {
      const first = await run({ uidls }, undefined, dir);
      assert.equal(first.r.status, 0, first.r.stderr);
      const names = await archived(dir, 'new');
      assert.equal(names.length, 3);
      for (const n of names) assert.ok(Buffer.byteLength(n) <= 255, n);
      const again = await run({ uidls }, undefined, dir);
      assert.equal(again.r.status, 0, again.r.stderr);
      assert.equal((await archived(dir, 'new')).length, 3);
    });
  });
});
