import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { passwordCredentials } from '../../src/auth/credentials.js';
import type { Logger } from '../../src/log/logger.js';
import { compiler } from '../../src/drivers/imap/imapflow.js';
import { ImapSource } from '../../src/drivers/imap/source.js';
import type { MessageMeta } from '../../src/domain/message.js';
import { imapView, smallMessages } from '../fixtures/nasty.js';
import { withDovecot } from '../helpers/server.js';

/**
 * imapflow 2.1.2 compiled every untagged FETCH response into a log line nobody read, and
 * src/drivers/imap/imapflow.ts wrapped its compiler to skip that (-14% user CPU). imapflow 2.10.2
 * skips it itself, so the wrapper is gone. This test watches the compiler imapflow calls (the
 * CommonJS build's handler module, which imapflow.ts loads) during a real backup fetch, with and
 * without --debug: no log compile of a FETCH response, while the other log lines (with --debug)
 * still go through it, so the watch is on imapflow's path. A later imapflow that compiles those
 * lines again fails here.
 */
type Compile = typeof compiler;
const handler = createRequire(import.meta.url)('imapflow/lib/handler/imap-handler.js') as { compiler: Compile };

const messages = smallMessages(30, 5);
const dc = withDovecot({ seed: [{ path: 'INBOX', messages }] });

function isUntaggedFetch(response: unknown): boolean {
  const r = response as { tag?: unknown; attributes?: { value?: unknown }[] };
  return r.tag === '*' && Array.isArray(r.attributes) && r.attributes[0]?.value === 'FETCH';
}

/** Log compiles imapflow makes while `fn` runs: of untagged FETCH responses, and of the rest. */
async function watchLogCompiles(fn: () => Promise<void>): Promise<{ fetch: number; other: number }> {
  const seen = { fetch: 0, other: 0 };
  const original = handler.compiler;
  handler.compiler = ((response: Parameters<Compile>[0], options?: Parameters<Compile>[1]) => {
    if (options?.isLogging === true) {
      if (isUntaggedFetch(response)) seen.fetch++;
      else seen.other++;
    }
    return original(response, options);
  }) as Compile;
  try {
    await fn();
  } finally {
    handler.compiler = original;
  }
  return seen;
}

describe('imapflow compiles no log line for FETCH responses', () => {
  for (const debug of [false, true]) {
    test(`a real fetch of 30 messages${debug ? ', with --debug' : ''}`, { skip: dc.skip }, async () => {
      const lines: string[] = [];
      const log: Logger = { debug: (l: string) => void lines.push(l), info() {}, warn() {}, error() {} };
      const src = new ImapSource({
        credentials: passwordCredentials(dc.alice.password),
        insecure: false,
        streamThreshold: 1 << 20,
        log,
        debug,
        ca: readFileSync(dc.server.caFile),
        endpoint: { kind: 'imap', user: 'alice', host: '127.0.0.1', port: dc.server.imapsPort, tls: 'tls' },
        connections: 1,
      });
      let bytes = 0;
      try {
        const seen = await watchLogCompiles(async () => {
          const inbox = (await src.mailboxes()).find((m) => m.path === 'INBOX');
          assert.ok(inbox);
          const selected = await src.select(inbox);
          const metas: MessageMeta[] = [];
          for await (const m of src.list(selected.mailbox, () => true)) metas.push(m);
          assert.equal(metas.length, 30);
          for await (const f of src.fetch(metas, new AbortController().signal)) {
            assert.ok(Buffer.isBuffer(f.body));
            bytes += f.body.length;
          }
        });
        assert.equal(bytes, messages.reduce((n, m) => n + imapView(m.raw).length, 0));
        assert.equal(seen.fetch, 0, `${seen.fetch} log compiles of FETCH responses`);
        if (debug) {
          assert.ok(seen.other > 0, 'with --debug, the other log lines go through the watched compiler');
          assert.ok(lines.some((l) => l.includes('OK') && l.includes('imap')), 'debug log has the server responses other than FETCH');
        } else {
          assert.equal(seen.other, 0, 'without --debug nothing is compiled for the log');
        }
      } finally {
        await src.close();
      }
    });
  }

  test('the compiler still compiles a FETCH response for the wire and a tagged line for the log', () => {
    const fetchResponse = {
      tag: '*',
      command: '7',
      attributes: [{ type: 'ATOM', value: 'FETCH' }, [{ type: 'ATOM', value: 'UID' }, { type: 'ATOM', value: '42' }]],
    };
    assert.equal(compiler(fetchResponse).toString(), '* 7 FETCH (UID 42)');
    assert.equal(compiler({ tag: 'A1', command: 'OK', attributes: [{ type: 'TEXT', value: 'done' }] }, { isLogging: true }).toString(), 'A1 OK done');
  });
});
