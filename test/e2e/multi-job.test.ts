/**
 * A `--config` file holding several jobs (`{"quiet": ..., "jobs": [...]}`), for cron: the jobs run
 * one after the other, each with its own lock, state and summary line; a failing job does not
 * stop the next; the exit code is the worst job's; no report file is left beside the config.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smallMessages } from '../fixtures/nasty.js';
import { readMaildirFolder } from '../helpers/archive.js';
import { runCli } from '../helpers/cli.js';
import { withDovecot } from '../helpers/server.js';
import { maildirFolderDir, mboxFolderFile } from '../../src/drivers/archive-paths.js';

const inbox = smallMessages(20, 3);
const work = smallMessages(7, 4);
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: inbox }, { path: 'Work', messages: work }] });

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mf-multijob-'));
});
after(async () => {
  if (root !== '') await rm(root, { recursive: true, force: true });
});

async function count(dir: string, folder: string): Promise<number> {
  return (await readMaildirFolder(maildirFolderDir(dir, 'maildir++', { path: folder, delimiter: '/' }))).length;
}

test('several jobs in one --config file: run in turn, one summary line each, a failing job does not stop the next, exit the worst', { skip: dc.skip, timeout: 180_000 }, async () => {
  const s = dc.server;
  const from = `imaps://${dc.alice.name}@127.0.0.1:${s.imapsPort}`;
  const logFile = join(root, 'logs', 'jobs.log');
  const config = join(root, 'jobs.json');
  await writeFile(
    config,
    JSON.stringify({
      ca: s.caFile,
      logFile,
      jobs: [
        { command: 'backup', from, passwordEnv: 'MF_PW', to: `maildir:${join(root, 'all')}` },
        { command: 'backup', from, passwordEnv: 'MF_WRONG', to: `maildir:${join(root, 'wrong')}` },
        { command: 'backup', from, passwordEnv: 'MF_PW', to: `mbox:${join(root, 'work')}`, include: ['Work'] },
      ],
    }),
  );
  const env = { MF_PW: dc.alice.password, MF_WRONG: 'not-the-password' };
  const r = await runCli(['--config', config], env);
  assert.equal(r.status, 4, `${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 4, r.stdout);
  assert.match(lines[0] ?? '', /^row 1 backup .*: ok \(exit 0\), 27 messages/);
  assert.match(lines[1] ?? '', /^row 2 backup .*: failed \(exit 4\)/);
  assert.match(lines[2] ?? '', /^row 3 backup .*: ok \(exit 0\), 7 messages/);
  assert.match(lines[3] ?? '', /3 rows, 2 ok, 1 failed; .*exit 4$/);
  assert.equal(await count(join(root, 'all'), 'INBOX'), inbox.length);
  assert.equal(await count(join(root, 'all'), 'Work'), work.length);
  const mbox = await readFile(mboxFolderFile(join(root, 'work'), { path: 'Work', delimiter: '/' }), 'utf8');
  assert.equal(mbox.split('\n').filter((l) => l.startsWith('From ')).length, work.length);
  // The run's own flags (logFile) came from the file; no report file beside the config.
  assert.match(await readFile(logFile, 'utf8'), /exit 4/);
  assert.deepEqual((await readdir(root)).filter((f) => f.includes('report')), []);
  assert.equal(`${r.stdout}${r.stderr}`.includes(dc.alice.password), false);

  // A rerun copies nothing new; a command named beside such a file is a usage error.
  const again = await runCli(['--config', config, '--quiet'], env);
  assert.equal(again.status, 4, again.stderr);
  assert.equal(again.stdout, '');
  const named = await runCli(['backup', '--config', config], env);
  assert.equal(named.status, 2);
  assert.match(named.stderr, /holds several jobs, each naming its command/);
});
