/**
 * `--json` for scripts: a fatal error is one JSON object on stdout, the summary carries per-folder
 * figures, the start time, the source and the archives; `--log-file` names them at the start and
 * every run, failed too, ends with an exit line.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smallMessages } from '../fixtures/nasty.js';
import { lastJson, runCli } from '../helpers/cli.js';
import { deadPort } from '../helpers/ports.js';
import { withDovecot } from '../helpers/server.js';

const inbox = smallMessages(6, 31);
const work = smallMessages(3, 32);
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: inbox }, { path: 'Work', messages: work }] });

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mailferry-json-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('--json and --log-file for scripts', { skip: dc.skip }, () => {
  test('a fatal error (exit 2, 4, 5, 6) is one JSON object on stdout; the log file gets an exit line', async () => {
    const from = `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`;
    const log = join(root, 'fail.log');
    await writeFile(join(root, 'a-file'), 'in the way');
    const closed = await deadPort();
    const cases: { args: string[]; exit: number; kind: string }[] = [
      { args: ['backup', '--json', '--from', from, '--password-env', 'PW', '--no-such-flag'], exit: 2, kind: 'usage' },
      { args: ['backup', '--json', '--from', from, '--password-env', 'PW'], exit: 2, kind: 'usage' },
      { args: ['backup', '--json', '--from', from, '--ca', dc.server.caFile, '--password-env', 'BAD', '--to', `maildir:${join(root, 'x')}`, '--log-file', log], exit: 4, kind: 'auth' },
      { args: ['backup', '--json', '--from', `imaps://a@127.0.0.1:${closed}`, '--password-env', 'PW', '--to', `maildir:${join(root, 'y')}`], exit: 5, kind: 'network' },
      { args: ['backup', '--json', '--from', from, '--ca', dc.server.caFile, '--password-env', 'PW', '--to', `maildir:${join(root, 'a-file', 'z')}`], exit: 6, kind: 'destination' },
    ];
    for (const c of cases) {
      const r = await runCli(c.args, { PW: dc.alice.password, BAD: 'wrong' });
      assert.equal(r.status, c.exit, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, 1, `one line on stdout: ${r.stdout}`);
      const out = lastJson(r.stdout);
      assert.deepEqual([out['type'], out['exit'], out['kind']], ['error', c.exit, c.kind], r.stdout);
      assert.equal(`mailferry: ${String(out['message'])}\n`, r.stderr, 'the same message as on stderr');
    }
    const text = await readFile(log, 'utf8');
    assert.match(text, new RegExp(`mailferry backup started: from imaps://alice@127\\.0\\.0\\.1:${dc.server.imapsPort}, to maildir:${join(root, 'x')}`));
    assert.match(text, /mailferry backup exit 4\n$/, text);
  });

  test('the summary: start time, source, absolute archives, figures per folder; the log file names account and archive', async () => {
    const log = join(root, 'ok.log');
    const r = await runCli(
      ['backup', '--json', '--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'PW', '--to', 'maildir:rel-archive', '--log-file', log],
      { PW: dc.alice.password },
      { cwd: root },
    );
    assert.equal(r.status, 0, r.stderr);
    const s = lastJson(r.stdout);
    assert.equal(s['type'], 'summary');
    assert.equal(s['source'], `imaps://alice@127.0.0.1:${dc.server.imapsPort}`);
    assert.deepEqual(s['sinks'], [`maildir:${join(root, 'rel-archive')}`]);
    const started = Date.parse(String(s['started']));
    assert.ok(Date.now() - started < 60_000 && Date.now() >= started, `started: ${String(s['started'])}`);
    const per = s['perFolder'] as { mailbox: string; messages: number; planned: number; unchanged: number; skipped: number; bytes: number }[];
    const by = new Map(per.map((f) => [f.mailbox, f]));
    assert.equal(by.get('INBOX')?.messages, inbox.length);
    assert.equal(by.get('INBOX')?.planned, inbox.length);
    assert.equal(by.get('Work')?.messages, work.length);
    assert.ok((by.get('Work')?.bytes ?? 0) > 0);
    assert.equal(per.reduce((n, f) => n + f.messages, 0), s['messages']);
    const progress = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; mailbox?: string; folder?: { messages: number; planned: number } });
    const lastWork = progress.filter((p) => p.type === 'progress' && p.mailbox === 'Work').at(-1);
    assert.deepEqual([lastWork?.folder?.messages, lastWork?.folder?.planned], [work.length, work.length], 'progress events carry the folder\'s own figures');
    const text = await readFile(log, 'utf8');
    assert.match(text, new RegExp(`started: from imaps://alice@127\\.0\\.0\\.1:${dc.server.imapsPort}, to maildir:${join(root, 'rel-archive')}\n`));
    assert.match(text, /mailferry backup exit 0\n$/);
  });
});
