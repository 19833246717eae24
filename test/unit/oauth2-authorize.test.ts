/**
 * `oauth2 authorize`'s flags (src/commands/oauth2.ts loadAuthorize): which endpoints, scope and
 * grant each way of naming the provider gives, and every problem at once (exit 2).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadAuthorize } from '../../src/commands/oauth2.js';
import { MailferryError } from '../../src/domain/errors.js';

const base = { action: 'authorize', clientId: 'id-1', refreshTokenFile: '/tmp/rt' };

test('--provider microsoft and --profile outlook: the device flow at Microsoft, offline_access asked', () => {
  for (const args of [{ ...base, provider: 'microsoft' }, { ...base, profile: 'outlook' }, { ...base, user: 'me@hotmail.com' }]) {
    const c = loadAuthorize(args);
    assert.equal(c.flow, 'device', JSON.stringify(args));
    assert.equal(c.deviceUrl, 'https://login.microsoftonline.com/common/oauth2/v2.0/devicecode');
    assert.equal(c.tokenUrl, 'https://login.microsoftonline.com/common/oauth2/v2.0/token');
    assert.match(c.scope, /IMAP\.AccessAsUser\.All .*offline_access/);
  }
});

test('Google (--provider, or --user\'s domain): the code flow with access_type=offline; --flow device switches', () => {
  for (const args of [{ ...base, provider: 'google' }, { ...base, user: 'me@gmail.com' }]) {
    const c = loadAuthorize(args);
    assert.equal(c.flow, 'code');
    assert.equal(c.authUrl, 'https://accounts.google.com/o/oauth2/v2/auth');
    assert.equal(c.tokenUrl, 'https://oauth2.googleapis.com/token');
    assert.equal(c.scope, 'https://mail.google.com/');
    assert.equal(c.extra?.['access_type'], 'offline');
  }
  assert.equal(loadAuthorize({ ...base, provider: 'google', flow: 'device' }).deviceUrl, 'https://oauth2.googleapis.com/device/code');
});

test('every problem at once: exit 2, no URL over plain http off loopback', () => {
  try {
    loadAuthorize({ action: 'authorize', authUrl: 'http://example.org/auth', tokenUrl: 'https://example.org/token', clientSecretEnv: 'A', clientSecretFile: '/x' });
    assert.fail('no error');
  } catch (e: unknown) {
    assert.ok(e instanceof MailferryError);
    assert.equal(e.exitCode, 2);
    for (const want of ['--auth-url must be https://', '--client-id', '--scope', '--refresh-token-file', 'not both']) assert.ok(e.message.includes(want), `${want}: ${e.message}`);
  }
});
