/**
 * The IMAP Source's FolderWatch (drivers/imap/idle.ts) against Dovecot: the first call says the
 * folder changed (its session just opened), a message APPENDed by another client is said within
 * a second or two, nothing is said when nothing came; IDLE is ended and sent again every
 * `renewMs` (counted in imapflow's protocol log) and a delivery after renewals is still seen; a
 * folder that is not there fails with a usage error instead of being retried for ever; with
 * `also`, a flag change or an expunge by another client is said once, after a short settle.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { passwordCredentials } from '../../src/auth/credentials.js';
import { MailferryError } from '../../src/domain/errors.js';
import { ImapSource } from '../../src/drivers/imap/source.js';
import type { Logger } from '../../src/log/logger.js';
import type { FolderWatch, WatchOptions } from '../../src/sources/source.js';
import { connect, withDovecot, type Account } from '../helpers/server.js';
import { deliverTo } from '../helpers/watch.js';

const ida: Account = { name: 'idle-ida', password: 'idle-ida-pw' };
const dc = withDovecot({ users: [ida] });

function source(lines: string[]): ImapSource {
  const log: Logger = { debug: (m) => lines.push(m), info: () => undefined, warn: (m) => lines.push(m), error: (m) => lines.push(m) };
  return new ImapSource({
    endpoint: { kind: 'imap', tls: 'plain', host: '127.0.0.1', port: dc.server.imapPort, user: ida.name },
    credentials: passwordCredentials(ida.password),
    insecure: false,
    connections: 1,
    streamThreshold: 1 << 20,
    log,
    debug: true,
  });
}

/** IDLE commands the client sent, from imapflow's protocol log. */
const idles = (lines: readonly string[]): number => lines.filter((l) => /"src":"c"/.test(l) && /\bIDLE\b/.test(l) && !/DONE/.test(l)).length;

describe('IMAP FolderWatch (IDLE)', { skip: dc.skip }, () => {
  test('says what changed, within seconds; renews IDLE every renewMs', { timeout: 30_000 }, async () => {
    const lines: string[] = [];
    const s = source(lines);
    const watch = s.watch(['INBOX'], { renewMs: 400, backoff: { baseMs: 100, maxMs: 400 } });
    await s.close();
    const never = new AbortController().signal;
    try {
      assert.deepEqual(await watch.changes(5_000, never), ['INBOX'], 'changed once its session opened');
      assert.equal(watch.live, 1);
      const t = Date.now();
      assert.deepEqual(await watch.changes(300, never), [], 'nothing came');
      assert.ok(Date.now() - t >= 250, 'waited');
      await new Promise((r) => setTimeout(r, 1_500));
      const sent = idles(lines);
      assert.ok(sent >= 3, `IDLE sent ${sent} times in about 1.8 s with renewMs 400 (imapflow log: ${lines.filter((l) => /IDLE/.test(l)).slice(0, 3).join(' | ')})`);
      const at = Date.now();
      await deliverTo(dc.server, ida);
      assert.deepEqual(await watch.changes(5_000, never), ['INBOX']);
      assert.ok(Date.now() - at < 2_000, `said ${Date.now() - at} ms after the APPEND`);
    } finally {
      await watch.close();
    }
  });

  test('a folder that is not there: a usage error, not retried for ever', { timeout: 20_000 }, async () => {
    const s = source([]);
    const watch = s.watch(['INBOX', 'No such folder'], { renewMs: 60_000, backoff: { baseMs: 100, maxMs: 400 } });
    await s.close();
    try {
      const never = new AbortController().signal;
      const deadline = Date.now() + 10_000;
      let failed: unknown;
      while (failed === undefined && Date.now() < deadline) await watch.changes(1_000, never).catch((e: unknown) => (failed = e));
      assert.ok(failed instanceof MailferryError, String(failed));
      assert.equal(failed.kind, 'usage');
      assert.match(failed.message, /No such folder/);
    } finally {
      await watch.close();
    }
  });

  test('a flag change or an expunge by another client: said once, after a short settle, only when asked for (opts.also)', { timeout: 30_000 }, async () => {
    await deliverTo(dc.server, ida);
    await deliverTo(dc.server, ida);
    const never = new AbortController().signal;
    const watching = async (also: WatchOptions['also']): Promise<{ watch: FolderWatch; close(): Promise<void> }> => {
      const s = source([]);
      const watch = s.watch(['INBOX'], { renewMs: 60_000, backoff: { baseMs: 100, maxMs: 400 }, ...(also === undefined ? {} : { also }) });
      await s.close();
      assert.deepEqual(await watch.changes(5_000, never), ['INBOX'], 'its session opened');
      return { watch, close: () => watch.close() };
    };
    const plain = await watching(undefined);
    const flags = await watching({ flags: true, expunges: true });
    const c = await connect(dc.server, ida);
    try {
      await c.mailboxOpen('INBOX');
      const at = Date.now();
      await c.messageFlagsAdd('1:2', ['\\Flagged']); // one STORE, two untagged FETCH: one change
      assert.deepEqual(await flags.watch.changes(5_000, never), ['INBOX'], 'a flag change is said');
      const took = Date.now() - at;
      assert.ok(took >= 250 && took < 2_000, `said ${took} ms after the STORE (settles 300 ms)`);
      assert.deepEqual(await flags.watch.changes(600, never), [], 'once for the burst');
      assert.deepEqual(await plain.watch.changes(600, never), [], 'not said to a watch that does not carry flags');
      await c.messageDelete('1');
      assert.deepEqual(await flags.watch.changes(5_000, never), ['INBOX'], 'an expunge is said');
      assert.deepEqual(await plain.watch.changes(600, never), [], 'not said to a watch that does not carry deletions');
    } finally {
      await c.logout();
      await plain.close();
      await flags.close();
    }
  });
});
