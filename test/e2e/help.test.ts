/**
 * Typos and help, as a newcomer meets them: a misspelt command gets a suggestion, -h, -V and
 * `help COMMAND` work, a command's help ends with the exit codes and does not repeat the global
 * flags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT, runCli } from '../helpers/cli.js';

test('a misspelt command: "did you mean backup?", exit 2, one line', async () => {
  const r = await runCli(['bakup', '--from', 'imaps://me@example.org', '--to', 'maildir:/tmp/x']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^mailferry: "bakup" is not a command \(backup, restore, [a-z, ]+\); did you mean backup\?/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('-h, -V and help COMMAND', async () => {
  const h = await runCli(['-h']);
  assert.equal(h.status, 0, h.stderr);
  assert.match(h.stdout, /^Commands:$/m);
  const v = await runCli(['-V']);
  assert.equal(v.status, 0, v.stderr);
  const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(v.stdout.trim(), pkg.version);
  const hb = await runCli(['help', 'backup']);
  assert.equal(hb.status, 0, hb.stderr);
  assert.match(hb.stdout, /^mailferry backup\n/);
  const plain = await runCli(['help']);
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(plain.stdout, h.stdout);
});

test('each command\'s --help: exit codes at the end, global flags named once, not listed; OAuth2 details with --show-hidden', async () => {
  for (const command of ['backup', 'restore', 'migrate', 'forward']) {
    const r = await runCli([command, '--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Exit codes:\n(.*\n)*\s+130\s+interrupted/, command);
    assert.match(r.stdout, /Global options \(mailferry --help\): --config FILE, --log-file FILE, --json/);
    assert.doesNotMatch(r.stdout, /^ {2,6}(-q, )?--(config|log-file|json|quiet|debug|version)\s/m, `${command}: global flags not listed again`);
    assert.doesNotMatch(r.stdout, /^ {2,6}--oauth2-client-id {2,}\S.*\[string\]$/m, 'an option line (a description may name it)');
    const lines = r.stdout.split('\n').length;
    // Was 92-141 lines with every global flag repeated; --verify (a copy then its proof) added 3 lines.
    assert.ok(lines <= (command === 'backup' || command === 'restore' ? 85 : 115), `${command} --help: ${lines} lines`);
    const all = await runCli([command, '--help', '--show-hidden']);
    assert.match(all.stdout, /^ {2,6}--oauth2-client-id {2,}\S.*\[string\]$/m);
  }
});
