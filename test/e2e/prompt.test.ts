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
import { withDovecot } from '../helpers/server.js';

const messages = smallMessages(12, 3);
const dc = withDovecot({ seed: [{ path: 'INBOX', messages }] });

// Runs argv on a new pty; waits for PROMPT, types TYPE_THIS and Enter, prints {"status", "output"} as JSON.
const PTY = `
import json, os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b''
typed = False
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
    if not typed and os.environ['PROMPT'].encode() in out:
        time.sleep(0.2)
        os.write(fd, os.environ['TYPE_THIS'].encode() + b'\\r')
        typed = True
_, status = os.waitpid(pid, 0)
print(json.dumps({'status': os.waitstatus_to_exitcode(status), 'output': out.decode('utf-8', 'replace'), 'typed': typed}))
`;

function onPty(args: string[], env: Record<string, string>): Promise<{ status: number; output: string; typed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', PTY, process.execPath, CLI_BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.once('error', reject);
    child.once('close', () => {
      try {
        resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as { status: number; output: string; typed: boolean });
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
  const r = await onPty(['backup', '--from', from, '--ca', dc.server.caFile, '--to', `maildir:${dir}`], {
    PROMPT: 'Password for alice@127.0.0.1: ',
    TYPE_THIS: dc.alice.password,
  });
  assert.ok(r.typed, `no prompt seen: ${r.output}`);
  assert.equal(r.status, 0, r.output);
  assert.ok(!r.output.includes(dc.alice.password), `the password was echoed or printed: ${r.output}`);
  assert.equal((await readMaildirFolder(dir)).length, messages.length);
});

test('on a terminal, a wrong password typed: exit 4, not echoed', { skip: dc.skip, timeout: 90_000 }, async () => {
  const r = await onPty(['backup', '--from', `imaps://alice@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--to', `maildir:${path.join(root, 'wrong')}`], {
    PROMPT: 'Password for alice@127.0.0.1: ',
    TYPE_THIS: 'wrong-Typed-pw-99',
  });
  assert.ok(r.typed, `no prompt seen: ${r.output}`);
  assert.equal(r.status, 4, r.output);
  assert.ok(!r.output.includes('wrong-Typed-pw-99'), `the password was echoed or printed: ${r.output}`);
});

test('without a terminal, no credential: usage error (exit 2) naming the password and OAuth2 flags', { skip: dc.skip }, async () => {
  const r = await runCli(['backup', '--from', `imaps://alice@127.0.0.1:${dc.server.imapsPort}`, '--to', `maildir:${path.join(root, 'none')}`]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /a password source is required: --password-env VAR, .*--oauth2-token-command CMD/);
});
