/**
 * The README's examples cannot rot: every `mailferry` command line in its shell, crontab and
 * systemd blocks is parsed by the CLI's own declarations (src/cli.ts, strict: an unknown or
 * removed flag, a bad choice, an unknown command fails), and a `--config FILE` line with the
 * README's job file (its JSON block), whose keys must be flags of its command. What needs no
 * server (`mailferry profiles`) also runs as written; test/e2e/readme.test.ts runs the rest
 * against Dovecot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli, COMMAND_NAMES } from '../../src/cli.js';
import { configPath, readJobFile, withJobFile } from '../../src/config/job-file.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { readmeExamples, readmeJson, shellWords } from '../helpers/readme.js';

const README = join(REPO_ROOT, 'README.md');

/** What the CLI makes of `argv` without running it: the command, or the usage error. */
async function parse(argv: string[], jobFile?: string): Promise<{ command?: string; error?: string }> {
  let words = argv;
  const job = configPath(argv);
  if (job !== undefined) {
    assert.ok(jobFile !== undefined, 'a --config example needs the README\'s job file');
    words = withJobFile(argv, readJobFile(jobFile, argv));
  }
  let error: string | undefined;
  let command: string | undefined;
  await buildCli(words, (p) => (command = p.command))
    .exitProcess(false)
    .fail((msg, err) => {
      error ??= msg || String(err);
    })
    .parseAsync();
  return { ...(command === undefined ? {} : { command }), ...(error === undefined ? {} : { error }) };
}

test('the shell words of a README line', () => {
  assert.deepEqual(shellWords(`PW=x mailferry backup --password-command "pass show mail" --to 'maildir:~/a b'   # note`), [
    'PW=x', 'mailferry', 'backup', '--password-command', 'pass show mail', '--to', 'maildir:~/a b', '#', 'note',
  ]);
});

test('every mailferry command line in the README parses with the CLI\'s flags', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-readme-'));
  try {
    const json = readmeJson(README);
    assert.equal(json.length, 1, 'one job file in the README');
    const jobFile = join(dir, 'job.json');
    await writeFile(jobFile, JSON.stringify(json[0]?.value));
    const examples = readmeExamples(README);
    assert.ok(examples.length >= 20, `only ${examples.length} examples found`);
    const commands = new Set<string>();
    for (const ex of examples) {
      const r = await parse(ex.argv, jobFile);
      assert.equal(r.error, undefined, `README line ${ex.line}: ${ex.text}\n-> ${String(r.error)}`);
      assert.ok(r.command !== undefined && (COMMAND_NAMES as readonly string[]).includes(r.command), `README line ${ex.line}: no command`);
      commands.add(r.command);
    }
    // The README shows these in its blocks (`folders` in prose).
    for (const c of ['backup', 'forward', 'migrate', 'profiles', 'restore', 'verify']) assert.ok(commands.has(c), `no ${c} example`);
    // The check can fail: a flag that does not exist (or no longer does) is refused.
    const removed = await parse(['backup', '--from', 'imaps://me@example.org', '--to', 'maildir:/x', '--removed-flag']);
    assert.match(String(removed.error), /removed-flag/);
    const badKey = join(dir, 'bad.json');
    await writeFile(badKey, JSON.stringify({ ...(json[0]?.value as object), removedFlag: true }));
    assert.match(String((await parse(['--config', badKey], badKey)).error), /removedFlag|removed-flag/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the README\'s examples that need no server run as written', async () => {
  const local = readmeExamples(README).filter((ex) => ex.argv[0] === 'profiles');
  assert.ok(local.length > 0);
  for (const ex of local) {
    const r = await runCli(ex.argv, ex.env);
    assert.equal(r.status, 0, `README line ${ex.line}: ${ex.text}\n${r.stderr}`);
    assert.match(r.stdout, /gmail/);
  }
});
