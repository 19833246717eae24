/**
 * The README's examples run as written, in the README's order, against a local Dovecot: only the
 * host names change. Every `imaps://` account given by address becomes one on 127.0.0.1 (the
 * source is alice; a restore's target carol, a migrate's bob; the CA of the test server added),
 * and the secrets they name (`--password-env VAR`, `--password-file FILE`) are provided. HOME is a
 * temporary directory, so `~/Mail/backup` is where the README says. Examples that need a
 * provider (`--user`, OAuth2), a relay or a job file are only parsed (test/unit/readme.test.ts).
 * Each must exit 0: the copies (backup, restore, migrate with the backup's archive), then the
 * verify of each.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { smallMessages } from '../fixtures/nasty.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { readmeExamples, type Example } from '../helpers/readme.js';
import { withDovecot, type Account } from '../helpers/server.js';

const bob: Account = { name: 'bob', password: 'bob-readme-pw' };
const carol: Account = { name: 'carol', password: 'carol-readme-pw' };
const dc = withDovecot({ users: [{ ...bob }, { ...carol }], seed: [{ path: 'Work', messages: smallMessages(6, 5) }, { path: 'Work/2023', messages: smallMessages(3, 6) }] });

/** An example with no provider, relay, OAuth2 or job file: every account an imaps:// address. */
function runnable(ex: Example): boolean {
  const flags = ex.argv.filter((w) => w.startsWith('--'));
  if (flags.some((f) => /^--(user|target-user|config|smtp|oauth2|profile|protocol)/.test(f))) return false;
  return ['backup', 'restore', 'migrate', 'verify'].includes(ex.argv[0] ?? '');
}

/** The example as it runs here: addresses on 127.0.0.1 with the test CA, and the secrets it names. */
async function localised(ex: Example, home: string): Promise<{ argv: string[]; env: Record<string, string> }> {
  const argv = [...ex.argv];
  const value = (flag: string): string | undefined => argv[argv.indexOf(flag) + 1];
  const remoteFrom = value('--from')?.startsWith('imaps://') === true;
  const remoteTo = value('--to')?.startsWith('imaps://') === true;
  const target = remoteFrom ? bob : carol;
  const first = remoteFrom ? dc.alice : target;
  const env: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i - 1];
    const w = argv[i] as string;
    if (w.startsWith('imaps://')) argv[i] = `imaps://${(flag === '--from' ? dc.alice : target).name}@127.0.0.1:${dc.server.imapsPort}`;
    if (flag === '--password-env') env[w] = first.password;
    if (flag === '--target-password-env') env[w] = target.password;
    if (flag === '--password-file') {
      const file = w.replace(/^~/, home);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, first.password, { mode: 0o600 });
    }
  }
  argv.push('--ca', dc.server.caFile);
  if (remoteFrom && remoteTo) argv.push('--target-ca', dc.server.caFile);
  return { argv, env };
}

describe('the README\'s examples, run as written against Dovecot', { skip: dc.skip }, () => {
  let home = '';
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'mf-readme-home-'));
  });
  after(async () => {
    if (home !== '') await rm(home, { recursive: true, force: true });
  });

  test('backup, verify, restore, migrate: each exits 0', async () => {
    const examples = readmeExamples(join(REPO_ROOT, 'README.md')).filter(runnable);
    for (const command of ['backup', 'restore', 'migrate', 'verify']) {
      assert.ok(examples.some((ex) => ex.argv[0] === command), `no runnable ${command} example in the README`);
    }
    // Every copy (in the README's order), then every verify, as a reader would run them.
    const order = [...examples.filter((ex) => ex.argv[0] !== 'verify'), ...examples.filter((ex) => ex.argv[0] === 'verify')];
    for (const ex of order) {
      const { argv, env } = await localised(ex, home);
      const r = await runCli(argv, { ...env, HOME: home, XDG_STATE_HOME: join(home, '.local', 'state') }, { timeoutMs: 180_000 });
      assert.equal(r.status, 0, `README line ${ex.line}: ${ex.text}\nran: mailferry ${argv.join(' ')}\nexit ${String(r.status)}\n${r.stderr}${r.stdout}`);
    }
  });
});
