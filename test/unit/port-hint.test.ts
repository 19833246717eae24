/**
 * The usual port's hint (drivers/scheme.ts usualPort, domain/net-errors.ts portHint): given only
 * off the scheme's usual port, added to a refused connection and to one not up in time, and
 * never to a connection lost later. test/e2e/port-hint.test.ts has the refused ports through the CLI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { MailferryError } from '../../src/domain/errors.js';
import { mapNetError } from '../../src/domain/net-errors.js';
import { Pop3Client } from '../../src/drivers/pop3/client.js';
import { usualPort } from '../../src/drivers/scheme.js';
import type { RemoteEndpoint } from '../../src/endpoints/url.js';

const at = (kind: RemoteEndpoint['kind'], tls: RemoteEndpoint['tls'], port: number): RemoteEndpoint => ({ kind, tls, port, host: 'h', user: 'u' });

test('usualPort: the scheme\'s port, only when another one is given', () => {
  assert.equal(usualPort(at('imap', 'tls', 9993)), 'imaps:// is usually port 993');
  assert.equal(usualPort(at('imap', 'starttls', 1143)), 'imap:// is usually port 143');
  assert.equal(usualPort(at('pop3', 'tls', 110)), 'pop3s:// is usually port 995');
  assert.equal(usualPort(at('pop3', 'plain', 2110)), 'pop3:// is usually port 110');
  assert.equal(usualPort(at('smtp', 'tls', 587)), 'smtps:// is usually port 465');
  assert.equal(usualPort(at('smtp', 'starttls', 25)), 'smtp:// is usually port 587');
  for (const e of [at('imap', 'tls', 993), at('imap', 'starttls', 143), at('pop3', 'tls', 995), at('pop3', 'starttls', 110), at('smtp', 'tls', 465), at('smtp', 'starttls', 587)]) {
    assert.equal(usualPort(e), undefined, `${e.kind} ${e.tls} ${e.port}`);
  }
});

const coded = (code: string): Error => Object.assign(new Error('x'), { code });

test('mapNetError: the hint on a refused connection and a connection not up in time, not on one lost', () => {
  const portHint = 'imaps:// is usually port 993';
  const refused = mapNetError(coded('ECONNREFUSED'), 'h:9993', new Set(), { portHint });
  assert.equal(refused?.message, 'connection refused by h:9993; imaps:// is usually port 993');
  assert.equal(refused?.retryable, false);
  for (const code of ['CONNECT_TIMEOUT', 'ETIMEDOUT']) {
    const late = mapNetError(coded(code), 'h:9993', new Set(['CONNECT_TIMEOUT']), { portHint });
    assert.equal(late?.message, `no connection to h:9993 in time (${code}); imaps:// is usually port 993`);
    assert.equal(late?.kind, 'network');
    assert.equal(late?.retryable, true, 'a time-out may pass: retried');
  }
  assert.equal(mapNetError(coded('ECONNRESET'), 'h:9993', new Set(), { portHint })?.message, 'connection to h:9993 lost (ECONNRESET)');
  // Without the hint (the usual port, or after the connection was up): as before.
  assert.equal(mapNetError(coded('ECONNREFUSED'), 'h:993')?.message, 'connection refused by h:993');
  assert.equal(mapNetError(coded('ETIMEDOUT'), 'h:993')?.message, 'connection to h:993 lost (ETIMEDOUT)');
});

test('POP3: a port that accepts and never greets, off the usual port: the time-out names the usual one', async () => {
  const held: net.Socket[] = [];
  const silent = net.createServer((sock) => held.push(sock));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as net.AddressInfo;
  try {
    const connecting = Pop3Client.connect({ host: '127.0.0.1', port, tls: 'plain', user: 'a', password: 'b', connectTimeoutMs: 300 });
    await assert.rejects(connecting, (e: unknown) => {
      assert.ok(e instanceof MailferryError);
      assert.equal(e.kind, 'network');
      assert.equal(e.message, `no answer from 127.0.0.1:${port} for 0.3 s; pop3:// is usually port 110`);
      return true;
    });
  } finally {
    for (const sock of held) sock.destroy();
    silent.close();
  }
});
