import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCli, type Parsed } from '../../src/cli.js';
import { loadBackupConfig } from '../../src/config/backup.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import { rawFlags } from '../../src/config/flags.js';
import { withJobFile, jobArgv } from '../../src/config/job-file.js';
import { loadForwardConfig } from '../../src/config/forward.js';
import { loadMigrateConfig } from '../../src/config/transfer.js';

/** The command line as yargs parses it for main.ts, then the one adapter to raw flags. */
async function parse(argv: string[]): Promise<{ command: string; raw: Record<string, unknown> }> {
  let parsed: Parsed | undefined;
  await buildCli(argv, (p) => (parsed = p))
    .fail((msg) => {
      throw new Error(msg);
    })
    .parseAsync();
  assert.ok(parsed !== undefined, `no command parsed from ${argv.join(' ')}`);
  return { command: parsed.command, raw: rawFlags(parsed.args) };
}

test('flags reach the raw config by name; not given: left out (the loader fills defaults, yargs does not)', async () => {
  const { raw } = await parse(['backup', '--from', 'imaps://me@h', '--to', 'maildir:/a', '--to', 'mbox:/b', '--password-env', 'PW', '--batch-mb', '3', '--no-uidl', '-q']);
  assert.deepEqual(raw, { from: 'imaps://me@h', to: ['maildir:/a', 'mbox:/b'], passwordEnv: 'PW', batchMb: 3, uidl: false, quiet: true });
  const cfg = loadBackupConfig(rawFlags({ ...raw, from: 'pop3s://me@h' }));
  assert.equal(cfg.noUidl, true, '--no-uidl (yargs: uidl false) reaches the loader');
  assert.equal(cfg.connections, DEFAULTS.connections);
  assert.equal(cfg.layout, DEFAULTS.layout);
  assert.equal(cfg.batchBytes, 3 << 20);
  assert.equal(cfg.batchMessages, DEFAULTS.batchMessages);
  assert.equal(cfg.streamThreshold, DEFAULTS.streamThreshold);
});

test('the OAuth2 flags of each account are gathered into one group per account', async () => {
  const { raw } = await parse([
    'migrate',
    '--from', 'imaps://me@old.example.org',
    '--oauth2-token-command', 'tok',
    '--to', 'imaps://me@new.example.org',
    '--target-oauth2-token-url', 'google',
    '--target-oauth2-client-id', 'id',
    '--target-oauth2-refresh-token-env', 'RT',
    '--target-connections', '2',
  ]);
  assert.deepEqual(raw['oauth2'], { tokenCommand: 'tok' });
  assert.deepEqual(raw['targetOauth2'], { tokenUrl: 'google', clientId: 'id', refreshTokenEnv: 'RT' });
  assert.equal(raw['targetConnections'], 2);
  const cfg = loadMigrateConfig(rawFlags({ ...raw }));
  assert.deepEqual(cfg.source.auth, { kind: 'oauth2', oauth2: { kind: 'command', command: 'tok' } });
  assert.ok(cfg.target.auth.kind === 'oauth2' && cfg.target.auth.oauth2.kind === 'refresh');
  assert.equal(cfg.target.connections, 2);
  assert.equal(cfg.source.connections, DEFAULTS.connections);

  const fwd = await parse(['forward', '--from', 'maildir:/a', '--smtp', 'smtps://me@relay', '--smtp-oauth2-token-command', 'relay-tok', '--rcpt', 'a@b']);
  assert.deepEqual(fwd.raw['smtpOauth2'], { tokenCommand: 'relay-tok' });
  assert.equal(fwd.raw['oauth2'], undefined);
  assert.deepEqual(loadForwardConfig(rawFlags(fwd.raw)).smtp.auth, { kind: 'oauth2', oauth2: { kind: 'command', command: 'relay-tok' } });
});

test('a job file feeds the same adapter: its flags, then the command line\'s', async () => {
  const job = jobArgv({ command: 'backup', from: 'imaps://me@h', to: ['maildir:/a'], passwordFile: '/pw', connections: 2, oauth2ClientId: 'x' }, 'job.json', new Set(['connections']));
  const { command, raw } = await parse(withJobFile(['--connections', '3'], job));
  assert.equal(command, 'backup');
  assert.deepEqual(raw, { from: 'imaps://me@h', to: ['maildir:/a'], passwordFile: '/pw', connections: 3, oauth2: { clientId: 'x' } });
});
