import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { damageMaildir, differences, runJsonLines, STRAY, type JsonLinesRun as Run } from '../helpers/verify-run.js';
import { withDovecot } from '../helpers/server.js';
import { CLI_BIN, REPO_ROOT, runCli } from '../helpers/cli.js';
import { spawn } from 'node:child_process';
import { EXIT } from '../../src/domain/errors.js';

/**
 * A damaged copy, for the archive forms test/e2e/verify.test.ts does not damage: an mbox archive
 * and a Maildir in the `fs` layout. Four messages are damaged in each (one removed, one byte of
 * another changed, a flag changed on a third, a stray one added) and one folder deleted: verify
 * names exactly those, each with its folder, source id, Message-ID and what differs, and exits
 * with EXIT.differences (9), at both depths.
 */
const dc = withDovecot({ nasty: { bigMessage: false } });


describe('verify of a damaged copy: mbox and the fs layout', { skip: dc.skip }, () => {
  let root = '';
  const env = (): Record<string, string> => ({ ALICE_PW: dc.alice.password, XDG_STATE_HOME: join(root, 'state') });
  const alice = (): string[] => ['--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'ALICE_PW'];

  const run = (args: string[]): Promise<Run> => runJsonLines(args, env());

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-verify-damaged-'));
    const b = await run(['backup', '--json', ...alice(), '--to', `mbox:${join(root, 'mbox')}`, '--to', `maildir:${join(root, 'fs')}`, '--layout', 'fs']);
    assert.equal(b.status, 0, b.stderr);
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  /** The five differences, each named: kind, folder, and for a message its ids, Message-ID and detail. */
  async function expectFive(copy: string[], damaged: { gone: string; altered: string; flagged: string }): Promise<void> {
    for (const depth of [[], ['--quick']]) {
      const r = await run(['verify', '--json', ...alice(), ...copy, ...depth]);
      assert.equal(r.status, EXIT.differences, `${r.stdout}\n${r.stderr}`);
      const found = differences(r);
      assert.deepEqual(found.map((d) => `${d['kind'] as string} ${d['folder'] as string}`).sort(), ['altered INBOX', 'extra INBOX', 'flags INBOX', 'folder-missing Drafts', 'missing INBOX'], JSON.stringify(found));
      const byKind = new Map(found.map((d) => [d['kind'] as string, d]));
      const missing = byKind.get('missing');
      assert.equal(missing?.['messageId'], damaged.gone);
      assert.match(String(missing?.['id']), /^\d+$/, 'the source UID');
      const altered = byKind.get('altered');
      assert.equal(altered?.['messageId'], damaged.altered);
      assert.match(String(altered?.['id']), /^\d+$/);
      assert.ok(typeof altered?.['copyId'] === 'string');
      assert.match(String(altered?.['detail']), /differ/);
      const flags = byKind.get('flags');
      assert.equal(flags?.['messageId'], damaged.flagged);
      assert.match(String(flags?.['detail']), /^flags: source "[^"]*", copy "[^"]*"$/);
      assert.equal(byKind.get('extra')?.['messageId'], '<stray@example.org>');
      assert.match(String(byKind.get('folder-missing')?.['detail']), /folder missing in the copy \(1 messages\)/);
      assert.equal(r.lines[r.lines.length - 1]?.['ok'], false);
    }
  }

  test('mbox: a record removed, a byte changed, a flag changed, a stray record, a folder file deleted', async () => {
    const mbox = join(root, 'mbox-damaged');
    await cp(join(root, 'mbox'), mbox, { recursive: true, preserveTimestamps: true });
    const file = join(mbox, 'INBOX');
    const text = await readFile(file, 'latin1');
    // Records: each starts with a From_ line at a line start.
    const starts = [0, ...[...text.matchAll(/\nFrom /g)].map((m) => (m.index ?? 0) + 1)];
    const records = starts.map((s, i) => text.slice(s, starts[i + 1] ?? text.length));
    const ids = records.map((r) => /^Message-ID: (<[^>]+>)$/m.exec(r)?.[1]);
    const plain = records.map((r, i) => ({ r, i })).filter(({ r }) => /^Subject: [A-Za-z]/m.test(r) && /^Message-ID: /m.test(r) && /^X-Status: $/m.test(r));
    const [gone, altered, flagged] = plain.map((p) => p.i) as [number, number, number];
    const out = records.map((r, i) => {
      if (i === gone) return '';
      if (i === altered) return r.replace(/^Subject: (.)/m, (_m, c: string) => `Subject: ${String.fromCharCode(c.charCodeAt(0) ^ 0x20)}`);
      if (i === flagged) return r.replace(/^X-Status: $/m, 'X-Status: F');
      return r;
    });
    // The stray record goes in the middle (another program's), the file's length changes.
    out.splice(1, 0, `From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n${STRAY}\n`);
    await writeFile(file, out.join(''), 'latin1');
    await rm(join(mbox, 'Drafts'));
    await expectFive(['--to', `mbox:${mbox}`], { gone: ids[gone] as string, altered: ids[altered] as string, flagged: ids[flagged] as string });
  });

  test('Maildir, fs layout: a file removed, a byte changed, a flag changed, a stray file, a folder deleted', async () => {
    const md = join(root, 'fs-damaged');
    await cp(join(root, 'fs'), md, { recursive: true, preserveTimestamps: true });
    const cur = join(md, 'cur');
    const files = (await readdir(cur)).sort();
    const withSubject: string[] = [];
    for (const f of files) {
      const t = await readFile(join(cur, f), 'latin1');
      if (/^Subject: [A-Za-z]/m.test(t) && /^Message-ID: /m.test(t)) withSubject.push(f);
    }
    const idOf = async (f: string): Promise<string> => /^Message-ID: (<[^>]+>)$/m.exec(await readFile(join(cur, f), 'latin1'))?.[1] ?? '';
    const [gone, altered, flagged] = withSubject as [string, string, string];
    const want = { gone: await idOf(gone), altered: await idOf(altered), flagged: await idOf(flagged) };
    await damageMaildir(cur, gone, altered, flagged);
    await rm(join(md, 'Drafts'), { recursive: true });
    await expectFive(['--to', `maildir:${md}`, '--layout', 'fs'], want);
  });

  test('progress: a redrawn line on a terminal, as a backup shows; nothing with --quiet or without a terminal', async () => {
    const copy = ['--to', `mbox:${join(root, 'mbox')}`];
    const shown = await onPty(['verify', ...alice(), ...copy], env());
    assert.equal(shown.status, 0, shown.output);
    // The last redraw before the summary: the folder, then the whole run's messages and MB.
    const lines = shown.output.split('\r\x1b[K').filter((l) => / · all \d+\/\d+ msgs/.test(l));
    assert.ok(lines.length > 0, JSON.stringify(shown.output));
    const total = /all (\d+)\/(\d+) msgs/.exec(lines.at(-1) ?? '');
    assert.ok(total !== null && Number(total[2]) > 0, lines.at(-1));
    assert.match(shown.output, /no differences/);
    const quiet = await onPty(['verify', '--quiet', ...alice(), ...copy], env());
    assert.equal(quiet.status, 0, quiet.output);
    assert.doesNotMatch(quiet.output, /msgs/);
    const piped = await runCli(['verify', '--quick', ...alice(), ...copy], env(), { timeoutMs: 120_000 });
    assert.equal(piped.status, 0, piped.stderr);
    assert.doesNotMatch(piped.stderr, /msgs|\x1b/);
  });
});

/** Runs the CLI under a pseudo-terminal (python3's pty): its exit status and all it wrote, stdout and stderr as one. */
const PTY = `
import fcntl, json, os, pty, struct, sys, termios
pid, fd = pty.fork()
if pid == 0:
    os.environ['TERM'] = 'vt100'
    fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 160, 0, 0))
    os.execv(sys.argv[1], sys.argv[1:])
out = b''
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
print(json.dumps({'status': os.waitstatus_to_exitcode(status), 'output': out.decode('utf-8', 'replace')}))
`;

function onPty(args: string[], env: Record<string, string>): Promise<{ status: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', PTY, process.execPath, CLI_BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.once('error', reject);
    child.once('close', () => {
      try {
        resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as { status: number; output: string });
      } catch (e: unknown) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}
