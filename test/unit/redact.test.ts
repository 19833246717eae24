import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeControl, redact, registerSecret } from '../../src/log/redact.js';
import { childEnv, envRef, runCommand } from '../../src/auth/secrets.js';

test('redact: raw, JSON-escaped, URL-encoded and base64 SASL forms', () => {
  const pw = 'q"w\\e r%t+y-7';
  registerSecret(pw);
  assert.equal(redact(`a ${pw} b`), 'a *** b');
  assert.equal(redact(JSON.stringify({ reason: `no ${pw}` })), '{"reason":"no ***"}');
  assert.equal(redact(`u?p=${encodeURIComponent(pw)}`), 'u?p=***');
  assert.equal(redact(`p=${new URLSearchParams({ s: pw }).toString().slice(2)}`), 'p=***');
  for (const user of ['a', 'ab', 'abc', 'someone@example.org']) {
    const plain = Buffer.from(`\0${user}\0${pw}`).toString('base64');
    assert.equal(redact(`C: AUTH PLAIN ${plain}`), 'C: AUTH PLAIN ***', user);
    const xoauth = Buffer.from(`user=${user}\x01auth=Bearer ${pw}\x01\x01`).toString('base64');
    assert.equal(redact(`AUTHENTICATE XOAUTH2 ${xoauth}`), 'AUTHENTICATE XOAUTH2 ***', user);
  }
  assert.equal(redact('nothing secret here, QUJDREVGR0g='), 'nothing secret here, QUJDREVGR0g=');
});

test('escapeControl: one line stays one line', () => {
  assert.equal(escapeControl('a\nb\rc\td\x1b[31m\x7f'), 'a\\nb\\rc\\td\\x1b[31m\\x7f');
});

test('a command we run gets no other secret of ours in its environment', async () => {
  process.env['MF_TEST_TARGET_PW'] = 'target-secret-1';
  process.env['MF_TEST_OTHER'] = 'holds already-read-secret-2 inside';
  process.env['MF_TEST_PLAIN'] = 'harmless';
  envRef('MF_TEST_TARGET_PW'); // as the config loader does for --target-password-env
  registerSecret('already-read-secret-2');
  const env = await runCommand('env', 'password command');
  assert.equal(env.includes('target-secret-1'), false);
  assert.equal(env.includes('MF_TEST_TARGET_PW'), false);
  assert.equal(env.includes('already-read-secret-2'), false);
  assert.match(env, /MF_TEST_PLAIN=harmless/);
  assert.equal(childEnv()['MF_TEST_PLAIN'], 'harmless');
});
