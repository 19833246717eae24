import { test } from 'node:test';
import assert from 'node:assert/strict';
import { passwordCredentials } from '../../src/auth/credentials.js';
import { MailferryError } from '../../src/domain/errors.js';
import { ImapSource } from '../../src/drivers/imap/source.js';
import { silentLogger } from '../../src/log/logger.js';
import { imapPeer } from '../helpers/imap-peer.js';

/**
 * A server that answers LIST one byte every 200 ms is never idle, so imapflow's socket timeout
 * never fires: the pool's per-command deadline (drivers/imap/pool.ts guard) ends it, as a
 * retryable network error, within a second of the deadline (issue 17: a byte every 20 s held a
 * run for ever).
 */
test('a LIST trickled a byte at a time ends at the command deadline', { timeout: 20_000 }, async () => {
  const peer = await imapPeer({ messages: [], hostile: { kind: 'trickle', everyMs: 200 } });
  const source = new ImapSource({
    endpoint: { kind: 'imap', user: 'alice', host: '127.0.0.1', port: peer.port, tls: 'plain' },
    credentials: passwordCredentials('pw'),
    insecure: false,
    connections: 1,
    streamThreshold: 8 << 20,
    log: silentLogger,
    debug: false,
    commandMs: 1500,
  });
  try {
    const started = Date.now();
    await assert.rejects(source.mailboxes(), (e: unknown) => e instanceof MailferryError && e.kind === 'network' && e.retryable && /too slowly/.test(e.message));
    const took = Date.now() - started;
    assert.ok(took >= 1400 && took < 3000, `${took} ms`);
  } finally {
    await source.close();
    await peer.close();
  }
});
