import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SeedMessage } from '../../scripts/dev/seed.js';
import { rfc5322Date } from '../fixtures/nasty.js';
import { runCliJson, type JsonResult } from '../helpers/cli.js';
import { migrateJson } from '../helpers/migrate.js';
import { sec, selectableFolders } from '../helpers/compare.js';
import { fetchAll, withDovecot, type Account } from '../helpers/server.js';

/** `migrate --from pop3s://`: the POP3 INBOX into the target's INBOX, dated by each message's Date: header. */
const dates = ['2019-03-10T08:15:00-08:00', '2021-12-31T23:59:59+00:00', '2024-06-01T12:00:00+02:00'];
const inbox: SeedMessage[] = dates.map((iso, i) => ({
  raw: Buffer.from(`From: a@example.org\r\nSubject: p${i}\r\nDate: ${rfc5322Date(iso)}\r\nMessage-ID: <p${i}@pop3.test>\r\n\r\nbody ${i}\r\n`),
  date: new Date('2025-01-01T00:00:00Z'),
}));
const gina: Account = { name: 'pop3-gina', password: 'pop3-gina-pw' };
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: inbox }, { path: 'Other', messages: inbox.slice(0, 1) }], users: [gina] });

describe('migrate from a POP3 account', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-migrate-pop3-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  const migrate = (): Promise<JsonResult> =>
    migrateJson({ server: dc.server, user: dc.alice, scheme: 'pop3s' }, { server: dc.server, user: gina }, root);

  test('the INBOX arrives byte-exact, dated by its Date: headers; a rerun appends nothing', async () => {
    const r = await migrate();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.out['messages'], inbox.length);
    assert.deepEqual(await selectableFolders(dc.server, gina), ['INBOX']);
    const got = await fetchAll(dc.server, gina, 'INBOX');
    assert.equal(got.length, inbox.length);
    for (const [i, m] of inbox.entries()) {
      const g = got.find((x) => x.raw.equals(m.raw));
      assert.ok(g !== undefined, `p${i} byte-exact`);
      assert.equal(sec(g.internalDate), sec(new Date(dates[i] as string)), `p${i} date`);
    }
    const again = await migrate();
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['messages'], 0);
    assert.equal((await fetchAll(dc.server, gina, 'INBOX')).length, inbox.length);
  });

  test('--unseen-only with a POP3 source is a usage error (exit 2), before any connection', async () => {
    const r = await runCliJson(
      ['migrate', '--from', 'pop3s://u@127.0.0.1:1', '--password-env', 'PW', '--to', 'imaps://v@127.0.0.1:1', '--target-password-env', 'PW', '--unseen-only'],
      { PW: 'x', XDG_STATE_HOME: join(root, 'state') },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--unseen-only is for IMAP sources only/);
  });
});
