/**
 * Cron-ready operation: a --config job file, --json lines, --log-file, --quiet, no progress without
 * a TTY, and no secret in anything a run leaves behind (stdout, stderr, log file, state).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smallMessages } from '../fixtures/nasty.js';
import { readMaildirFolder } from '../helpers/archive.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { withDovecot } from '../helpers/server.js';
import { maildirFolderDir } from '../../src/drivers/archive-paths.js';

const inbox = smallMessages(30, 7);
const work = smallMessages(12, 8);
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: inbox }, { path: 'Work', messages: work }] });

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mailferry-cron-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function pwFile(): Promise<string> {
  const f = join(root, 'pw');
  await writeFile(f, `${dc.alice.password}\n`, { mode: 0o600 });
  return f;
}

function account(): string {
  return `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`;
}

async function countMaildir(dir: string, folder: string): Promise<number> {
  return (await readMaildirFolder(maildirFolderDir(dir, 'maildir++', { path: folder, delimiter: '/' }))).length;
}

/** Every file under dir, recursively, as text. */
async function allText(dir: string): Promise<string> {
  let out = '';
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out += await readFile(join(e.parentPath, e.name), 'latin1');
  }
  return out;
}

describe('cron-ready operation', { skip: dc.skip }, () => {
  test('--config job file runs the command it names; command-line flags win; paths and types checked', async () => {
    const archive = join(root, 'job');
    const job = join(root, 'job.json');
    await writeFile(
      job,
      JSON.stringify({
        command: 'backup',
        from: account(),
        ca: dc.server.caFile,
        passwordFile: await pwFile(),
        to: [`maildir:${archive}`],
        include: ['Work'],
        connections: 2,
        quiet: true,
      }),
    );
    // The file says Work only; the command line's --include replaces it.
    const r = await runCli(['--config', job, '--include', 'INBOX']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '', 'quiet from the file: nothing on stdout');
    assert.equal(await countMaildir(archive, 'INBOX'), inbox.length);
    await assert.rejects(readdir(maildirFolderDir(archive, 'maildir++', { path: 'Work', delimiter: '/' })), 'Work was not included');

    // The same file with `mailferry backup --config` and no override: Work only.
    const archive2 = join(root, 'job2');
    const job2 = join(root, 'job2.json');
    await writeFile(job2, (await readFile(job, 'utf8')).replace(archive, archive2));
    const r2 = await runCli(['backup', '--config', job2]);
    assert.equal(r2.status, 0, r2.stderr);
    assert.equal(await countMaildir(archive2, 'Work'), work.length);
    await assert.rejects(readdir(join(archive2, 'cur')), 'INBOX was not included');
  });

  test('--config problems: a secret in the file, a wrong type, an unknown key, another command: exit 2, no secret echoed', async () => {
    const bad = join(root, 'bad.json');
    const secret = 'Sup3r-secret-in-file';
    await writeFile(bad, JSON.stringify({ command: 'backup', from: account(), password: secret, include: [{ x: 1 }], to: 'maildir:/x' }));
    const r = await runCli(['--config', bad]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /"password": secrets are not written in a config file/);
    assert.match(r.stderr, /"include": expected a string/);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret));

    const unknown = join(root, 'unknown.json');
    await writeFile(unknown, JSON.stringify({ command: 'backup', frm: account() }));
    const u = await runCli(['--config', unknown]);
    assert.equal(u.status, 2);
    assert.match(u.stderr, /Unknown argument.*frm/);

    const other = await runCli(['restore', '--config', unknown]);
    assert.equal(other.status, 2);
    assert.match(other.stderr, /command line says restore, the --config file says backup/);

    // The README's crontab line on a fresh account: the log's folder does not exist yet; it is made (0700).
    const freshLog = join(root, 'missing-dir', 'state', 'run.log');
    const fresh = await runCli(['backup', '--from', account(), '--ca', dc.server.caFile, '--password-env', 'PW', '--to', `maildir:${join(root, 'fresh')}`, '--log-file', freshLog], { PW: dc.alice.password });
    assert.equal(fresh.status, 0, fresh.stderr);
    assert.equal((await stat(freshLog)).mode & 0o777, 0o600);
    assert.equal((await stat(join(root, 'missing-dir', 'state'))).mode & 0o777, 0o700);
    assert.match(await readFile(freshLog, 'utf8'), /backup started/);

    // A log path that cannot be a file (its folder is a file): exit 2 before anything is written.
    await writeFile(join(root, 'a-file'), 'x');
    const noLog = await runCli(['backup', '--from', account(), '--password-env', 'PW', '--to', `maildir:${join(root, 'nolog')}`, '--log-file', join(root, 'a-file', 'run.log')], { PW: dc.alice.password });
    assert.equal(noLog.status, 2, noLog.stderr);
    assert.match(noLog.stderr, /cannot open --log-file .*a-file.*(ENOTDIR|EEXIST)/);
    await assert.rejects(readdir(join(root, 'nolog')), 'nothing written when the log file cannot be opened');

    const notJson = join(root, 'not.json');
    await writeFile(notJson, '{ from: x');
    const n = await runCli(['backup', '--config', notJson]);
    assert.equal(n.status, 2);
    assert.match(n.stderr, /not valid JSON/);
  });

  test('--json: every stdout line parses; progress events lead to a summary that matches the archive', async () => {
    const archive = join(root, 'json');
    const args = ['backup', '--json', '--from', account(), '--ca', dc.server.caFile, '--password-file', await pwFile(), '--to', `maildir:${archive}`, '--batch-mb', '0.01'];
    const r = await runCli(args);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const summary = lines.at(-1);
    assert.equal(summary?.['type'], 'summary');
    assert.equal(summary?.['messages'], inbox.length + work.length);
    assert.equal(summary?.['exitCode'], 0);
    const progress = lines.filter((l) => l['type'] === 'progress');
    assert.ok(progress.filter((p) => p['event'] === 'planned').length >= 2, 'one planned event per folder');
    const batches = progress.filter((p) => p['event'] === 'batch');
    assert.ok(batches.length >= 2, `several batch events with a tiny --batch-mb, got ${batches.length}`);
    assert.equal(batches.at(-1)?.['messages'], summary?.['messages'], 'the last progress event counts every message');
    assert.equal(lines.length, progress.length + 1, 'nothing but progress and the summary');
    assert.equal((await countMaildir(archive, 'INBOX')) + (await countMaildir(archive, 'Work')), summary?.['messages']);

    // A rerun: no batch events, the summary says all unchanged.
    const again = await runCli(args);
    const last = JSON.parse(again.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
    assert.equal(last['messages'], 0);
    assert.equal(last['unchanged'], inbox.length + work.length);
  });

  test('no TTY: no progress drawing, one summary line; --log-file gets a timestamped log (0600), --quiet keeps stdout empty', async () => {
    const archive = join(root, 'logged');
    const log = join(root, 'run.log');
    const base = ['backup', '--from', account(), '--ca', dc.server.caFile, '--password-file', await pwFile(), '--to', `maildir:${archive}`];
    const r = await runCli([...base, '--log-file', log]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'nothing on stderr when all is well');
    assert.ok(!r.stdout.includes('\x1b') && !r.stdout.includes('\r'), 'no progress drawing');
    assert.equal(r.stdout.trim().split('\n').length, 1);
    assert.match(r.stdout, /2 folders, 42 messages copied/);
    const q = await runCli([...base, '--log-file', log, '--quiet']);
    assert.equal(q.status, 0, q.stderr);
    assert.equal(q.stdout, '');
    const text = await readFile(log, 'utf8');
    const lines = text.trim().split('\n');
    assert.ok(lines.every((l) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error): /.test(l)), text);
    assert.equal(lines.filter((l) => / info: mailferry backup started: from imaps:\/\/alice@/.test(l)).length, 2);
    assert.ok(lines.some((l) => /42 messages copied .*\(exit 0\)$/.test(l)), text);
    assert.ok(lines.some((l) => /0 messages copied .*42 already archived.*\(exit 0\)$/.test(l)), text);
    assert.equal((await stat(log)).mode & 0o777, 0o600);
  });

  test('no secret in stdout, stderr, log file or state, even with --debug and a failed login', async () => {
    const archive = join(root, 'secret');
    const log = join(root, 'secret.log');
    const wrong = join(root, 'wrong-pw');
    const wrongSecret = 'Wr0ng-but-still-secret';
    await writeFile(wrong, wrongSecret, { mode: 0o600 });
    const base = ['backup', '--debug', '--json', '--from', account(), '--ca', dc.server.caFile, '--to', `maildir:${archive}`, '--log-file', log];
    const results: CliResult[] = [];
    results.push(await runCli([...base, '--password-file', wrong]));
    assert.equal(results[0]?.status, 4, results[0]?.stderr);
    results.push(await runCli([...base, '--password-env', 'PW'], { PW: dc.alice.password }));
    assert.equal(results[1]?.status, 0, results[1]?.stderr);
    await chmod(wrong, 0o644);
    results.push(await runCli([...base, '--password-file', wrong]));
    assert.equal(results[2]?.status, 2, 'a password file others can read is refused');
    const everything = results.map((r) => r.stdout + r.stderr).join('') + (await readFile(log, 'latin1')) + (await allText(archive));
    assert.ok(everything.includes('AUTHENTICATE') || everything.includes('LOGIN'), 'the debug trace shows the login');
    for (const secret of [dc.alice.password, wrongSecret, Buffer.from(`\0${dc.alice.name}\0${dc.alice.password}`).toString('base64')]) {
      assert.ok(!everything.includes(secret), `secret ${secret.slice(0, 3)}... leaked`);
    }
  });
});
