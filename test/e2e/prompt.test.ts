/**
 * The interactive password prompt, through a real pseudo-terminal (python3's pty module): asked
 * only when stdin and stderr are a terminal, typed characters never echoed, the run succeeds.
 * Without a terminal, no credential stays a usage error (exit 2) before any connection.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { smallMessages } from '../fixtures/nasty.js';
import { readMaildirFolder } from '../helpers/archive.js';
import { CLI_BIN, REPO_ROOT, runCli } from '../helpers/cli.js';
import { connect, withDovecot } from '../helpers/server.js';

const messages = smallMessages(12, 3);
const pat = { name: 'pat', password: 'pat-Typed-Pw-2' };
const dc = withDovecot({ seed: [{ path: 'INBOX', messages }], users: [pat] });

// Runs argv on a new pty; for each [prompt, answer] of PAIRS in turn, waits for the prompt to
// appear (once more) and types the answer and Enter; prints {"status", "output", "typed"} as JSON.
const PTY = `
import json, os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
pairs = json.loads(os.environ['PAIRS'])
out = b''
typed = 0
seen = {}
deadline = time.time() + 60
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    if typed < len(pairs):
        prompt, answer = pairs[typed]
        before = sum(1 for p, _ in pairs[:typed] if p == prompt)
        if out.count(prompt.encode()) > before:
            time.sleep(0.2)
            os.write(fd, answer.encode() + b'\\r')
            typed += 1
_, status = os.waitpid(pid, 0)
print(json.dumps({'status': os.waitstatus_to_exitcode(status), 'output': out.decode('utf-8', 'replace'), 'typed': typed}))
`;

function onPty(args: string[], pairs: [string, string][]): Promise<{ status: number; output: string; typed: number }> {
  return new Promise((resolve, reject) => {
    // Its own state directory: a run elsewhere on this machine may hold the default one's lock.
    const env = { ...process.env, PAIRS: JSON.stringify(pairs), XDG_STATE_HOME: path.join(root, 'state') };
    const child = spawn('python3', ['-c', PTY, process.execPath, CLI_BIN, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.once('error', reject);
    child.once('close', () => {
      try {
        resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as { status: number; output: string; typed: number });
      } catch (e: unknown) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}

let root = '';
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'mf-prompt-'));
});
after(async () => {
  if (root !== '') await rm(root, { recursive: true, force: true });
});

test('on a terminal, no password flag: asks "Password for alice@127.0.0.1: ", does not echo, backs up', { skip: dc.skip, timeout: 90_000 }, async () => {
  const dir = path.join(root, 'tty');
  const from = `imaps://alice@127.0.0.1:${dc.server.imapsPort}`;
  const r = await onPty(['backup', '--from', from, '--ca', dc.server.caFile, '--to', `maildir:${dir}`], [['Password for alice@127.0.0.1: ', dc.alice.password]]);
  assert.equal(r.typed, 1, `no prompt seen: ${r.output}`);
  assert.equal(r.status, 0, r.output);
  assert.ok(!r.output.includes(dc.alice.password), `the password was echoed or printed: ${r.output}`);
  assert.equal((await readMaildirFolder(dir)).length, messages.length);
});

test('on a terminal, a wrong password typed: exit 4, not echoed', { skip: dc.skip, timeout: 90_000 }, async () => {
  const r = await onPty(['backup', '--from', `imaps://alice@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--to', `maildir:${path.join(root, 'wrong')}`], [
    ['Password for alice@127.0.0.1: ', 'wrong-Typed-pw-99'],
  ]);
  assert.equal(r.typed, 1, `no prompt seen: ${r.output}`);
  assert.equal(r.status, 4, r.output);
  assert.ok(!r.output.includes('wrong-Typed-pw-99'), `the password was echoed or printed: ${r.output}`);
});

test('migrate on a terminal: asks for the source\'s password, then the target\'s; neither echoed', { skip: dc.skip, timeout: 90_000 }, async () => {
  const s = dc.server;
  const r = await onPty(
    ['migrate', '--from', `imaps://alice@127.0.0.1:${s.imapsPort}`, '--ca', s.caFile, '--to', `imaps://${pat.name}@127.0.0.1:${s.imapsPort}`, '--target-ca', s.caFile],
    [
      ['Password for alice@127.0.0.1: ', dc.alice.password],
      [`Password for ${pat.name}@127.0.0.1: `, pat.password],
    ],
  );
  assert.equal(r.typed, 2, `not both prompts seen: ${r.output}`);
  assert.equal(r.status, 0, r.output);
  assert.ok(!r.output.includes(dc.alice.password) && !r.output.includes(pat.password), `a password was echoed or printed: ${r.output}`);
  const c = await connect(s, pat);
  const st = await c.status('INBOX', { messages: true });
  await c.logout();
  assert.equal(st === false ? -1 : st.messages, messages.length);
});

test('without a terminal, no credential: usage error (exit 2) naming the password and OAuth2 flags', { skip: dc.skip }, async () => {
  const r = await runCli(['backup', '--from', `imaps://alice@127.0.0.1:${dc.server.imapsPort}`, '--to', `maildir:${path.join(root, 'none')}`]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /a password source is required: --password-env VAR, .*--oauth2-token-command CMD/);
});
