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
  assert.match(r.stderr, /^mailferry: "bakup" is not a command \(backup, restore, [a-z0-9, ]+\); did you mean backup\?/);
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

/** The flags a --help output lists as option lines (not those only named in a description). */
function optionLines(help: string): Set<string> {
  return new Set(help.split('\n').flatMap((l) => /^ {2,6}(?:-\w, )?(--[\w-]+)/.exec(l)?.[1] ?? []));
}

test('each command\'s --help: exit codes at the end, global flags named once, not listed; OAuth2 details with --show-hidden', async () => {
  for (const command of COMMANDS) {
    const r = await runCli([command, '--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Exit codes:\n(.*\n)*.*\s130\s+interrupted/, command);
    assert.match(r.stdout, /Global options \(mailferry --help\): --config FILE, --log-file FILE, --json/);
    assert.doesNotMatch(r.stdout, /^ {2,6}(-q, )?--(config|log-file|json|quiet|debug|version)\s/m, `${command}: global flags not listed again`);
    assert.doesNotMatch(r.stdout, /^ {2,6}--oauth2-client-id {2,}\S.*\[string\]$/m, 'an option line (a description may name it)');
    assert.doesNotMatch(r.stdout, /^ {2,6}--batch-mb /m, `${command}: tuning flags only with --show-hidden`);
    const lines = r.stdout.split('\n').length;
    // Was 92-152 lines with every global flag repeated, then 82-115 (backup 82): one-line
    // descriptions, tuning flags behind --show-hidden and a two-column exit-code table; then
    // restore 62, migrate 91, forward 85, verify 81: one line for an account's password and
    // OAuth2 alternatives, one for its TLS flags, a second account's ("target: as --password-env").
    assert.ok(lines <= (LINES[command] ?? 0), `${command} --help: ${lines} lines`);
    assert.deepEqual(r.stdout.split('\n').filter((l) => l.length > 100), [], `${command}: no line over 100 columns`);
    const all = await runCli([command, '--help', '--show-hidden']);
    const shown = optionLines(r.stdout);
    const listed = optionLines(all.stdout);
    assert.deepEqual([...shown].filter((f) => !listed.has(f)), [], `${command}: --show-hidden lists every flag --help does`);
    if (['batch', 'profiles'].includes(command)) continue;
    assert.match(all.stdout, /^ {2,6}--oauth2-client-id {2,}\S.*\[string\]$/m);
    // Its description names the alternatives (wrapped: one space for each run of white space).
    assert.match(r.stdout.replace(/\s+/g, ' '), / --password-env [^[]*--password-file\|-command, --oauth2-token-command\|-url \[string\]/, command);
    for (const flag of ['--password-file', '--password-command', '--oauth2-token-command', '--oauth2-token-url', '--tls-insecure', '--tls-mode']) {
      assert.ok(!shown.has(flag) && listed.has(flag), `${command}: ${flag} only with --show-hidden`);
    }
    if (command !== 'folders') assert.ok(listed.has('--batch-mb'), command);
  }
});

test('a second account\'s flags: one line each, every one of them with --show-hidden', async () => {
  for (const [command, prefix] of [['migrate', 'target-'], ['verify', 'target-'], ['forward', 'smtp-']] as const) {
    const r = await runCli([command, '--help']);
    assert.match(r.stdout, new RegExp(`^ {2}--${prefix}password-env {2,}\\S+: as --password-env, each named --${prefix}\\.\\.\\.`, 'm'));
    assert.match(r.stdout, new RegExp(`^ {2}--${prefix}ca {2,}\\S+: as --ca, each named --${prefix}\\.\\.\\.`, 'm'));
    const shown = optionLines(r.stdout);
    const listed = optionLines((await runCli([command, '--help', '--show-hidden'])).stdout);
    const details = ['password-file', 'password-command', 'oauth2-token-command', 'oauth2-token-url', 'oauth2-client-id', 'oauth2-refresh-token-file', 'tls-insecure', 'tls-mode'];
    for (const flag of details.map((d) => `--${prefix}${d}`)) assert.ok(!shown.has(flag) && listed.has(flag), `${command}: ${flag}`);
    if (prefix === 'target-') assert.ok(!shown.has('--target-connections') && listed.has('--target-connections'), command);
  }
});

const COMMANDS = ['backup', 'restore', 'migrate', 'forward', 'folders', 'verify', 'batch', 'profiles'];
// Lines of `COMMAND --help` at 100 columns (the count of "\n" plus one); restore leaves room for
// one more flag.
const LINES: Record<string, number> = { backup: 46, restore: 54, migrate: 58, forward: 59, folders: 31, verify: 57, batch: 38, profiles: 15 };

test('backup --help: the exit-code table, the ports of each scheme, --dry-run/--check; no line over 100 columns', async () => {
  const r = await runCli(['backup', '--help']);
  assert.equal(r.status, 0, r.stderr);
  for (const [code, meaning] of [[0, 'ok'], [2, 'usage'], [3, 'partial'], [4, 'authentication'], [5, 'network, TLS or wrong scheme'], [6, 'archive not writable'], [7, 'another run holds the lock'], [8, 'daily budget spent'], [9, 'verify: the copy differs'], [130, 'interrupted']] as const) {
    assert.match(r.stdout, new RegExp(`(^|\\s)${code}\\s+${meaning}`, 'm'), `exit ${code}`);
  }
  assert.match(r.stdout.replace(/\s+/g, ' '), /imaps:\/\/USER@HOST \(port 993\), imap:\/\/ \(143, STARTTLS\), pop3s:\/\/ \(995\), pop3:\/\/ \(110\)/);
  assert.match(r.stdout, /^ {2}--dry-run, --check {2,}\S/m);
  const wide = r.stdout.split('\n').filter((l) => l.length > 100);
  assert.deepEqual(wide, []);
});
