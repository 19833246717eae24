/**
 * `~` in the paths flags and job files take: no shell expands it after `maildir:` or in a JSON
 * file, so mailferry does (config/flags.ts), from $HOME; the summary names the absolute archive.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smallMessages } from '../fixtures/nasty.js';
import { runCli } from '../helpers/cli.js';
import { withDovecot } from '../helpers/server.js';

const inbox = smallMessages(5, 19);
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: inbox }] });

let home: string;
let cwd: string;
before(async () => {
  home = await mkdtemp(join(tmpdir(), 'mailferry-home-'));
  cwd = await mkdtemp(join(tmpdir(), 'mailferry-cwd-'));
});
after(async () => {
  await rm(home, { recursive: true, force: true });
  await rm(cwd, { recursive: true, force: true });
});

describe('~ in paths', { skip: dc.skip }, () => {
  test('--to maildir:~/…, --password-file, --ca, --log-file and a job file\'s mbox:~/… land in $HOME', async () => {
    await writeFile(join(home, 'pw'), `${dc.alice.password}\n`, { mode: 0o600 });
    await copyFile(dc.server.caFile, join(home, 'ca.pem'));
    const env = { HOME: home, XDG_STATE_HOME: join(home, 'state') };
    const from = `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`;
    const r = await runCli(
      ['backup', '--from', from, '--password-file', '~/pw', '--ca', '~/ca.pem', '--to', 'maildir:~/Mail/backup', '--log-file', '~/logs/run.log'],
      env,
      { cwd },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal((await readdir(join(home, 'Mail', 'backup', 'cur'))).length, inbox.length, 'the archive is under $HOME');
    assert.deepEqual(await readdir(cwd), [], 'nothing written under a directory named ~');
    assert.ok(r.stdout.includes(`maildir:${join(home, 'Mail', 'backup')}`), `the summary names the absolute archive: ${r.stdout}`);
    assert.match(await readFile(join(home, 'logs', 'run.log'), 'utf8'), /messages copied/);

    await writeFile(join(home, 'job.json'), JSON.stringify({ command: 'backup', from, passwordFile: '~/pw', ca: '~/ca.pem', to: ['mbox:~/Box'], quiet: true }));
    const j = await runCli(['--config', '~/job.json'], env, { cwd });
    assert.equal(j.status, 0, j.stderr);
    assert.ok((await stat(join(home, 'Box', 'INBOX'))).isFile(), 'the job file\'s mbox:~/Box is under $HOME');
    assert.deepEqual(await readdir(cwd), []);
  });

  test('~user is refused with a clear usage error, before any I/O', async () => {
    const r = await runCli(['backup', '--from', 'imaps://a@127.0.0.1:1', '--password-env', 'X', '--to', 'maildir:~bob/Mail'], { HOME: home, X: 'x' }, { cwd });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /~bob\/Mail: "~user" paths are not expanded/);
    assert.deepEqual(await readdir(cwd), []);
  });
});
