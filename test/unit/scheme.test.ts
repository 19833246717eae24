/**
 * The scheme probe (drivers/scheme.ts) leaves plain servers alone: a POP3 server that greets
 * late is probed once, answers the TLS ClientHello in plain text (or not at all) and is used as
 * usual; one that greeted at once but logs in slowly is not probed at all (the driver's
 * connection heard it). test/e2e/scheme.test.ts has the wrong schemes against Dovecot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pop3Client } from '../../src/drivers/pop3/client.js';
import { PROBE_AFTER_MS } from '../../src/drivers/scheme.js';
import { fakeServer, standard } from '../helpers/pop3-peer.js';

const opts = (port: number): Parameters<typeof Pop3Client.connect>[0] => ({ host: '127.0.0.1', port, tls: 'plain', user: 'alice', password: 'pw' });

test('a POP3 server that greets after the probe starts: probed once, then used', async () => {
  const fake = await fakeServer(standard({}), '+OK slow ready', { greetAfterMs: PROBE_AFTER_MS + 1000 });
  try {
    const c = await Pop3Client.connect(opts(fake.port));
    assert.ok(c.capabilities.has('UIDL'));
    await c.quit();
    assert.equal(fake.connections, 2, 'the session and the probe');
  } finally {
    await fake.close();
  }
});

test('a POP3 server that greets at once and logs in slowly is not probed', async () => {
  const fake = await fakeServer(
    standard({}, (line, sock) => {
      if (!line.startsWith('PASS')) return false;
      setTimeout(() => sock.write('+OK Logged in.\r\n'), PROBE_AFTER_MS + 1000);
      return true;
    }),
  );
  try {
    const c = await Pop3Client.connect(opts(fake.port));
    await c.quit();
    assert.equal(fake.connections, 1);
  } finally {
    await fake.close();
  }
});
