/**
 * Ctrl-C or SIGTERM while a large message streams: exit 130 "interrupted" (whatever error the
 * abort made surface: a cut download, a closed connection), and the archive stays consistent, so
 * a rerun finishes with every message.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, smallMessages } from '../fixtures/nasty.js';
import { runCli } from '../helpers/cli.js';
import { withDovecot } from '../helpers/server.js';

const big = {
  raw: Buffer.from(`Subject: big\r\nMessage-ID: <big@interrupt.test>\r\n\r\n${randomBytes(22_500_000, 3).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`),
};
const small = smallMessages(4, 23);
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: [...small, big] }] });

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mailferry-interrupt-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The size of the largest file in dir (0 when none, or no dir yet). */
async function largest(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir).catch(() => [])) n = Math.max(n, (await stat(join(dir, f)).catch(() => ({ size: 0 }))).size);
  return n;
}

describe('interrupted while a large message streams', { skip: dc.skip }, () => {
  test('SIGTERM and SIGINT mid-stream: exit 130 "interrupted" within seconds; a rerun exits 0 with every message', async () => {
    assert.ok(big.raw.length > 30_000_000, `a 30 MB message: ${big.raw.length}`);
    const pw = join(root, 'pw');
    await writeFile(pw, `${dc.alice.password}\n`, { mode: 0o600 });
    const archive = join(root, 'archive');
    const args = ['backup', '--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-file', pw, '--to', `maildir:${archive}`];
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      let child: ChildProcess | undefined;
      let sent = 0;
      const watch = setInterval(() => {
        // Once the big message is being written (its tmp/ file past 2 MB), the signal.
        void largest(join(archive, 'tmp')).then((n) => {
          if (n > 2_000_000 && sent === 0 && child !== undefined) {
            sent = Date.now();
            child.kill(signal);
          }
        });
      }, 20);
      // Paced at 4 MB/s, so the stream lasts ~8 s and the signal lands inside it.
      const r = await runCli([...args, '--max-bytes-per-second', '4M'], {}, { onSpawn: (c) => (child = c), timeoutMs: 60_000 }).finally(() => clearInterval(watch));
      assert.ok(sent > 0, `${signal} was sent mid-stream (exit ${r.status}: ${r.stderr})`);
      assert.equal(r.status, 130, `${signal}: ${r.stderr}`);
      assert.match(r.stderr, /mailferry: interrupted/);
      assert.doesNotMatch(r.stderr, /DownloadIncomplete|NoConnection|cannot write/);
      const took = Date.now() - sent;
      assert.ok(took < 5_000, `${signal}: exited ${took} ms after the signal`);
    }
    const r = await runCli(args);
    assert.equal(r.status, 0, r.stderr);
    const files = [...(await readdir(join(archive, 'cur'))), ...(await readdir(join(archive, 'new')))];
    assert.equal(files.length, small.length + 1, 'every message, once');
    assert.deepEqual(await readdir(join(archive, 'tmp')), [], 'no staged file left');
  });
});
