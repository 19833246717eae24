import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadBackupConfig } from '../../src/config/backup.js';
import { jobArgv } from '../../src/config/job-file.js';
import { loadMigrateConfig } from '../../src/config/transfer.js';
import { MailferryError } from '../../src/domain/errors.js';

/** The credential part of the config loaders: exactly one kind, every problem at once, exit 2. */
const from = 'imaps://me@imap.example.org';
const to = ['maildir:/tmp/x'];

function problems(fn: () => unknown): string {
  try {
    fn();
  } catch (e: unknown) {
    assert.ok(e instanceof MailferryError && e.kind === 'usage', String(e));
    return e.message;
  }
  assert.fail('expected a usage error');
}

test('refresh flow: "google" names Google\'s token endpoint; secrets stay references', () => {
  const cfg = loadBackupConfig({ from, to, oauth2: { tokenUrl: 'google', clientId: 'id', refreshTokenFile: '/k/rt', clientSecretEnv: 'CS' } });
  assert.equal(cfg.auth.kind, 'oauth2');
  assert.ok(cfg.auth.kind === 'oauth2' && cfg.auth.oauth2.kind === 'refresh');
  assert.equal(cfg.auth.oauth2.tokenUrl, 'https://oauth2.googleapis.com/token');
  assert.deepEqual(cfg.auth.oauth2.refreshToken, { file: '/k/rt' });
  assert.deepEqual(cfg.auth.oauth2.clientSecret, { env: 'CS' });
  const ms = loadBackupConfig({ from, to, oauth2: { tokenUrl: 'Microsoft', clientId: 'id', refreshTokenEnv: 'RT' } });
  assert.ok(ms.auth.kind === 'oauth2' && ms.auth.oauth2.kind === 'refresh');
  assert.equal(ms.auth.oauth2.tokenUrl, 'https://login.microsoftonline.com/common/oauth2/v2.0/token');
  assert.equal(ms.auth.oauth2.clientSecret, undefined, 'a public client has no secret');
});

test('a token command alone is enough; with refresh-flow flags it is refused', () => {
  const cfg = loadBackupConfig({ from, to, oauth2: { tokenCommand: 'oauth2l fetch --scope mail' } });
  assert.deepEqual(cfg.auth, { kind: 'oauth2', oauth2: { kind: 'command', command: 'oauth2l fetch --scope mail' } });
  assert.match(problems(() => loadBackupConfig({ from, to, oauth2: { tokenCommand: 'x', clientId: 'id' } })), /give --oauth2-token-command or the refresh flow/);
});

test('every problem of the credentials and the rest at once', () => {
  const text = problems(() =>
    loadBackupConfig({
      from,
      to,
      passwordEnv: 'PW',
      layout: 'nope',
      oauth2: { tokenUrl: 'http://auth.example.org/token', clientSecretEnv: 'A', clientSecretFile: '/b' },
    }),
  );
  for (const want of [
    /give a password source or OAuth2 \(--oauth2-\.\.\.\), not both/,
    /--oauth2-token-url must be https:\/\/ \(http:\/\/ only on loopback\)/,
    /--oauth2-client-id ID is required/,
    /the refresh flow needs --oauth2-refresh-token-env or --oauth2-refresh-token-file or --oauth2-refresh-token-command/,
    /give only one of --oauth2-client-secret-env, --oauth2-client-secret-file/,
    /--layout must be maildir\+\+ or fs/,
  ]) {
    assert.match(text, want);
  }
});

test('a token URL with credentials in it, or not a URL, is refused', () => {
  assert.match(problems(() => loadBackupConfig({ from, to, oauth2: { tokenUrl: 'https://u:p@auth.example.org/t', clientId: 'i', refreshTokenEnv: 'R' } })), /may not hold credentials/);
  assert.match(problems(() => loadBackupConfig({ from, to, oauth2: { tokenUrl: 'auth.example.org', clientId: 'i', refreshTokenEnv: 'R' } })), /not a URL/);
});

test('migrate: the target\'s OAuth2 flags carry the target- prefix in messages', () => {
  const text = problems(() =>
    loadMigrateConfig({ from, to: 'imaps://me@new.example.org', passwordEnv: 'A', targetOauth2: { tokenUrl: 'google', refreshTokenEnv: 'R' } }),
  );
  assert.match(text, /--target-oauth2-client-id ID is required/);
  const cfg = loadMigrateConfig({ from, to: 'imaps://me@new.example.org', passwordEnv: 'A', targetOauth2: { tokenCommand: 'get-token' } });
  assert.equal(cfg.source.auth.kind, 'password');
  assert.equal(cfg.target.auth.kind, 'oauth2');
});

test('job files: OAuth2 flags by reference pass, a token or secret written in the file is refused', () => {
  const ok = jobArgv({ command: 'backup', oauth2TokenUrl: 'google', 'oauth2-client-id': 'id', oauth2RefreshTokenFile: '/k/rt', oauth2ClientSecretEnv: 'CS' }, 'job.json');
  assert.deepEqual(ok.argv, ['--oauth2-token-url', 'google', '--oauth2-client-id', 'id', '--oauth2-refresh-token-file', '/k/rt', '--oauth2-client-secret-env', 'CS']);
  const text = problems(() => jobArgv({ oauth2RefreshToken: '1//0abc', 'oauth2-client-secret': 's3cr3t', 'target-oauth2-refresh-token': 'x' }, 'job.json'));
  assert.match(text, /"oauth2RefreshToken": secrets are not written in a config file/);
  assert.match(text, /"oauth2-client-secret": secrets are not written/);
  assert.match(text, /"target-oauth2-refresh-token": secrets are not written/);
  assert.ok(!text.includes('1//0abc') && !text.includes('s3cr3t'), 'the secret is not repeated');
});
