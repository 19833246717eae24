/** `--since 7d`, `--before 1y`: ages back from today through the CLI, against INTERNALDATEs on Dovecot. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smallMessages } from '../fixtures/nasty.js';
import { runCliJson } from '../helpers/cli.js';
import { withDovecot } from '../helpers/server.js';

const DAY = 86_400_000;
const ages = [2, 10, 400];
const messages = smallMessages(ages.length, 41).map((m, i) => ({ ...m, date: new Date(Date.now() - (ages[i] ?? 0) * DAY) }));
const dc = withDovecot({ seed: [{ path: 'INBOX', messages }] });

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mailferry-ages-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('relative dates', { skip: dc.skip }, () => {
  test('--since 7d, 2w, 1y and --before 1y choose by age', async () => {
    const run = (n: number, ...filter: string[]): ReturnType<typeof runCliJson> =>
      runCliJson(
        ['backup', '--json', '--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'PW', '--to', `maildir:${join(root, String(n))}`, ...filter],
        { PW: dc.alice.password },
      );
    const cases: [string[], number][] = [
      [['--since', '7d'], 1],
      [['--since', '2w'], 2],
      [['--since', '1y'], 2],
      [['--before', '1y'], 1],
      [['--since', '3m', '--before', '1w'], 1],
    ];
    for (const [i, [filter, copied]] of cases.entries()) {
      const r = await run(i, ...filter);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual([r.out['messages'], r.out['filtered']], [copied, ages.length - copied], filter.join(' '));
    }
  });
});
