import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { passwordCredentials } from '../../src/auth/credentials.js';
import type { Logger } from '../../src/log/logger.js';
import { compiler, skippedLogCompiles } from '../../src/drivers/imap/imapflow.js';
import { ImapSource } from '../../src/drivers/imap/source.js';
import type { MessageMeta } from '../../src/domain/message.js';
import { imapView, smallMessages } from '../fixtures/nasty.js';
import { withDovecot } from '../helpers/server.js';

/**
 * src/drivers/imap/imapflow.ts skips imapflow's log compile of untagged FETCH responses. These
 * tests check the wrapper does only that, and that it is in the path imapflow really takes
 * (a real fetch from Dovecot moves the counter), so an imapflow that stops calling its compiler
 * through the module object fails here instead of silently costing CPU again.
 */
type Compile = typeof compiler;
const handler = createRequire(import.meta.url)('imapflow/lib/handler/imap-handler.js') as { compiler: Compile };

const fetchResponse = {
  tag: '*',
  command: '7',
  attributes: [{ type: 'ATOM', value: 'FETCH' }, [{ type: 'ATOM', value: 'UID' }, { type: 'ATOM', value: '42' }]],
};
const okResponse = { tag: 'A1', command: 'OK', attributes: [{ type: 'TEXT', value: 'done' }] };

describe('imapflow.ts: the log compile of FETCH responses is skipped', () => {
  test('only a log compile of an untagged FETCH response is skipped; the rest compiles as imapflow does', async () => {
    const before = skippedLogCompiles();
    assert.equal((await handler.compiler(fetchResponse, { isLogging: true })).length, 0);
    assert.equal(skippedLogCompiles(), before + 1);
    const wire = await handler.compiler(fetchResponse);
    assert.equal(wire.toString(), '* 7 FETCH (UID 42)');
    assert.deepEqual(await handler.compiler(okResponse, { isLogging: true }), await compiler(okResponse, { isLogging: true }));
    assert.equal((await handler.compiler(okResponse, { isLogging: true })).toString(), 'A1 OK done');
    assert.equal(skippedLogCompiles(), before + 1);
  });

  const dc = withDovecot({ seed: [{ path: 'INBOX', messages: smallMessages(30, 5) }] });
  test('a real fetch goes through the wrapper, and --debug still logs the other responses', { skip: dc.skip }, async () => {
    const lines: string[] = [];
    const log: Logger = { debug: (l: string) => void lines.push(l), info() {}, warn() {}, error() {} };
    const src = new ImapSource({
      credentials: passwordCredentials(dc.alice.password),
      insecure: false,
      streamThreshold: 1 << 20,
      log,
      debug: true,
      ca: readFileSync(dc.server.caFile),
      endpoint: { kind: 'imap', user: 'alice', host: '127.0.0.1', port: dc.server.imapsPort, tls: 'tls' },
      connections: 1,
    });
    try {
      const inbox = (await src.mailboxes()).find((m) => m.path === 'INBOX');
      assert.ok(inbox);
      const selected = await src.select(inbox);
      const metas: MessageMeta[] = [];
      for await (const m of src.list(selected.mailbox, () => true)) metas.push(m);
      assert.equal(metas.length, 30);
      const before = skippedLogCompiles();
      let bytes = 0;
      for await (const f of src.fetch(metas, new AbortController().signal)) {
        assert.ok(Buffer.isBuffer(f.body));
        bytes += f.body.length;
      }
      assert.equal(bytes, smallMessages(30, 5).reduce((n, m) => n + imapView(m.raw).length, 0));
      assert.ok(skippedLogCompiles() - before >= 30, `skipped ${skippedLogCompiles() - before} log compiles for 30 FETCH responses`);
      assert.ok(
        lines.some((l) => l.includes('OK') && l.includes('imap')),
        'debug log has the server responses other than FETCH',
      );
    } finally {
      await src.close();
    }
  });
});
