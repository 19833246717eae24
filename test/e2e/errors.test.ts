/**
 * Failure modes of `mailferry backup`, end to end: the real CLI against a real Dovecot on
 * 127.0.0.1 (the protocol is never mocked). For each case: the documented exit code, stderr is one
 * line "mailferry: ..." (no stack trace unless --debug), no password in stdout/stderr, the archive is
 * left consistent (no lock left behind, nothing half-written in tmp/), and after fixing the cause a
 * rerun into the same --to exits 0 with every source message exactly once.
 *
 * Accounts: alice holds the nasty mailbox with its 21 MB message (full disk); bob a small copy of it
 * without the big message (most cases); carol 3000 small messages (dropped connections).
 * The mount cases need root and tmpfs: without them they are skipped loudly (and fail under
 * CI=true as root).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { findDoveadm, startDovecot, type DovecotServer } from '../../scripts/dev/dovecot.js';
import { seedMailbox } from '../../scripts/dev/seed.js';
import { maildirFolderDir, mboxFolderFile } from '../../src/drivers/archive-paths.js';
import { nastyMailbox, smallMessages } from '../fixtures/nasty.js';
import { readMaildirFolder, readMboxFile } from '../helpers/archive.js';
import { deadPort } from '../helpers/ports.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { connect, withDovecot, type Account } from '../helpers/server.js';

const exec = promisify(execFile);

const bob: Account = { name: 'bob', password: 'bob-Pa55-w0rd' };
const carol: Account = { name: 'carol', password: 'carol-Pa55-w0rd' };
const dc = withDovecot({ nasty: true, users: [{ ...bob }, { ...carol }] });
const LOCK = '.mailferry.lock';
/** AUTHENTICATE PLAIN's initial response: a --debug protocol trace must not show it either. */
const saslPlain = (user: string, password: string): string => Buffer.from(`\0${user}\0${password}`).toString('base64');
/** Every password any run in this file uses; none may ever be printed, as is or SASL-encoded. */
const SECRETS = [dc.alice, bob, carol].flatMap((a) => [a.password, saslPlain(a.name, a.password)]);

let root = '';

// ---------------------------------------------------------------------------------------------
// helpers

const imaps = (a: Account, s: DovecotServer = dc.server, host = '127.0.0.1'): string => `imaps://${a.name}@${host}:${s.imapsPort}`;
const imap = (a: Account, s: DovecotServer = dc.server): string => `imap://${a.name}@127.0.0.1:${s.imapPort}`;

/** `backup` of `from` into `maildir:dir`, password from $PW. */
function backup(from: string, dir: string, password: string, extra: string[] = []): Promise<CliResult> {
  return runCli(['backup', '--from', from, '--password-env', 'PW', '--to', `maildir:${dir}`, ...extra], { PW: password });
}

function show(r: CliResult): string {
  return `exit ${String(r.status)} signal ${String(r.signal)} after ${r.ms} ms\n--- stderr\n${r.stderr}--- stdout\n${r.stdout}`;
}

function assertNoSecret(r: CliResult, extra: string[] = []): void {
  for (const s of [...SECRETS, ...extra]) {
    assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), `a password was printed:\n${show(r)}`);
  }
}

/** The documented exit code, one "mailferry: " line on stderr and no stack (unless --debug). */
function assertFails(r: CliResult, code: number, message: RegExp, opts: { debug?: boolean; secrets?: string[] } = {}): void {
  assert.equal(r.status, code, show(r));
  assertNoSecret(r, opts.secrets);
  const lines = r.stderr.split('\n');
  assert.equal(lines.pop(), '', `stderr must end with a newline:\n${show(r)}`);
  if (opts.debug === true) {
    const ours = lines.filter((l) => l.startsWith('mailferry: '));
    assert.equal(ours.length, 1, show(r));
    assert.match(ours[0] as string, message, show(r));
  } else {
    assert.equal(lines.length, 1, `stderr must be exactly one line:\n${show(r)}`);
    assert.ok(lines[0]?.startsWith('mailferry: '), show(r));
    assert.match(lines[0] as string, message, show(r));
    assert.doesNotMatch(r.stderr, /^\s+at /m, `stack trace without --debug:\n${show(r)}`);
  }
}

function assertOk(r: CliResult): void {
  assert.equal(r.status, 0, show(r));
  assertNoSecret(r);
}

interface SourceFolder {
  path: string;
  delimiter: string;
  uids: number[];
}

const sourceCache = new Map<string, SourceFolder[]>();

/** Every selectable folder of the account with its UIDs, read over IMAP. */
async function sourceFolders(server: DovecotServer, account: Account): Promise<SourceFolder[]> {
  const key = `${server.dir} ${account.name}`;
  const cached = sourceCache.get(key);
  if (cached !== undefined) return cached;
  const c = await connect(server, account);
  try {
    const out: SourceFolder[] = [];
    for (const l of await c.list()) {
      if (l.flags.has('\\Noselect') || l.flags.has('\\NonExistent')) continue;
      const box = await c.mailboxOpen(l.path, { readOnly: true });
      const uids = box.exists === 0 ? [] : (await c.search({ all: true }, { uid: true })) || [];
      out.push({ path: l.path, delimiter: l.delimiter ?? '/', uids: [...uids].sort((a, b) => a - b) });
    }
    sourceCache.set(key, out);
    return out;
  } finally {
    await c.logout();
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

/** What a failed run must leave: no lock, nothing in any tmp/. */
async function assertConsistent(dir: string, where: string): Promise<void> {
  const files = await filesUnder(dir);
  assert.ok(!files.includes(LOCK), `${where}: lock file left behind in ${dir}`);
  assert.deepEqual(files.filter((f) => /(^|\/)tmp\/[^/]+$/.test(f)), [], `${where}: files left in tmp/`);
}

/** The Maildir archive holds every message of every source folder exactly once, and nothing else. */
async function assertMaildirComplete(dir: string, server: DovecotServer, account: Account, where: string): Promise<void> {
  await assertConsistent(dir, where);
  let total = 0;
  for (const f of await sourceFolders(server, account)) {
    const got = await readMaildirFolder(maildirFolderDir(dir, 'maildir++', f));
    const uids = got.map((m) => Number(m.uid)).sort((a, b) => a - b);
    assert.deepEqual(uids, f.uids, `${where}: folder ${f.path}: UIDs in the archive vs on the server`);
    total += f.uids.length;
  }
  const messages = (await filesUnder(dir)).filter((f) => /(^|\/)(cur|new)\/[^/]+$/.test(f));
  assert.equal(messages.length, total, `${where}: message files in the whole archive`);
}

async function assertMboxComplete(dir: string, identity: string, server: DovecotServer, account: Account, where: string): Promise<void> {
  await assertConsistent(dir, where);
  for (const f of await sourceFolders(server, account)) {
    const file = mboxFolderFile(dir, f);
    const got = existsSync(file) ? await readMboxFile(file, dir, f.path, identity) : [];
    assert.equal(got.length, f.uids.length, `${where}: mbox folder ${f.path}: message count`);
  }
}


/** A listener that counts connections: usage errors must not open any. */
async function trapServer(): Promise<{ port: number; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const srv = net.createServer((sock) => {
    hits++;
    sock.destroy();
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return { port: addr.port, hits: () => hits, close: () => new Promise((resolve) => srv.close(() => resolve())) };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `mount ...`; on failure skips the test loudly, except as root under CI=true, where it fails.
 * Returns false when skipped.
 */
async function mountOrSkip(t: TestContext, args: string[]): Promise<boolean> {
  try {
    await exec('mount', args);
    return true;
  } catch (e: unknown) {
    const why = `mount ${args.join(' ')} failed: ${(e as { stderr?: string }).stderr?.trim() || String(e)}`;
    if (process.env.CI === 'true' && process.getuid?.() === 0) throw new Error(`CI=true as root but ${why}`);
    process.stderr.write(`\n!!!!! SKIPPING MOUNT TEST (needs root and tmpfs): ${why} !!!!!\n\n`);
    t.skip(why);
    return false;
  }
}

async function umount(dir: string): Promise<void> {
  await exec('umount', [dir]).catch(async () => exec('umount', ['-l', dir]).catch(() => undefined));
}

// ---------------------------------------------------------------------------------------------

describe('backup failures: exit code, one stderr line, consistent and rerunnable archive', () => {
  // In the suite, so that it runs after withDovecot's top-level before() has started the server.
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'mf-errors-'));
    if (dc.skip !== false) return;
    await seedMailbox(dc.server, bob, nastyMailbox({ bigMessage: false }));
    await seedMailbox(dc.server, carol, [{ path: 'Bulk', messages: smallMessages(3000, 11) }]);
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  // One failed login only: Dovecot delays each further login from 127.0.0.1 (auth penalty, 2^n s)
  // until one succeeds.
  test('1. wrong password: exit 4; rerun with the right one (with --debug: traced, password hidden)', { skip: dc.skip }, async () => {
    const dir = path.join(root, 'auth');
    const wrong = 'Wr0ng-Pa55w0rd-Xy';
    const r = await backup(imaps(bob), dir, wrong, ['--ca', dc.server.caFile]);
    assertFails(r, 4, /login refused.*(user name|password)/, { secrets: [wrong, saslPlain(bob.name, wrong)] });
    await assertConsistent(dir, 'after exit 4');
    const ok = await backup(imaps(bob), dir, bob.password, ['--ca', dc.server.caFile, '--debug']);
    assertOk(ok);
    assert.match(ok.stderr, /AUTHENTICATE|LOGIN/, `--debug shows the protocol:\n${show(ok)}`);
    await assertMaildirComplete(dir, dc.server, bob, 'rerun after wrong password');
  });

  test('2. connection refused: exit 5; rerun on the right port', { skip: dc.skip }, async () => {
    const dir = path.join(root, 'refused');
    const port = await deadPort();
    const r = await backup(`imaps://bob@127.0.0.1:${port}`, dir, bob.password, ['--ca', dc.server.caFile]);
    assertFails(r, 5, /connection refused/);
    await assertConsistent(dir, 'after exit 5');
    assertOk(await backup(imaps(bob), dir, bob.password, ['--ca', dc.server.caFile]));
    await assertMaildirComplete(dir, dc.server, bob, 'rerun after refused');
  });

  test('3. unknown host: exit 5 (ENOTFOUND or EAI_AGAIN); rerun with the right host', { skip: dc.skip, timeout: 40_000 }, async () => {
    const dir = path.join(root, 'unknown-host');
    const r = await runCli(
      ['backup', '--from', imaps(bob, dc.server, 'nonexistent.invalid'), '--password-env', 'PW', '--to', `maildir:${dir}`, '--ca', dc.server.caFile],
      { PW: bob.password },
      { timeoutMs: 30_000 },
    );
    assertFails(r, 5, /unknown host|nonexistent\.invalid/);
    await assertConsistent(dir, 'after exit 5');
    assertOk(await backup(imaps(bob), dir, bob.password, ['--ca', dc.server.caFile]));
    await assertMaildirComplete(dir, dc.server, bob, 'rerun after unknown host');
  });

  test('4. untrusted certificate: exit 5 naming --ca; --tls-insecure, --ca and STARTTLS with --ca work', { skip: dc.skip }, async () => {
    const dir = path.join(root, 'tls');
    const [r, d] = await Promise.all([
      backup(imaps(bob), dir, bob.password),
      backup(imaps(bob), path.join(root, 'tls-debug'), bob.password, ['--debug']),
    ]);
    assertFails(r, 5, /certificate.*--ca/);
    assertFails(d, 5, /certificate.*--ca/, { debug: true });
    assert.match(d.stderr, /^\s+at /m, `--debug prints the stack of the cause:\n${show(d)}`);
    await assertConsistent(dir, 'after exit 5');
    // the same archive, once with --tls-insecure, then with --ca (nothing left to copy)
    assertOk(await backup(imaps(bob), dir, bob.password, ['--tls-insecure']));
    await assertMaildirComplete(dir, dc.server, bob, '--tls-insecure');
    assertOk(await backup(imaps(bob), dir, bob.password, ['--ca', dc.server.caFile]));
    await assertMaildirComplete(dir, dc.server, bob, '--ca rerun');
    // fresh archives: --ca over imaps, and STARTTLS on the plain port with --ca
    const [ca, starttls] = await Promise.all([
      backup(imaps(bob), path.join(root, 'tls-ca'), bob.password, ['--ca', dc.server.caFile]),
      backup(imap(bob), path.join(root, 'tls-starttls'), bob.password, ['--ca', dc.server.caFile]),
    ]);
    assertOk(ca);
    assertOk(starttls);
    await assertMaildirComplete(path.join(root, 'tls-ca'), dc.server, bob, 'imaps --ca');
    await assertMaildirComplete(path.join(root, 'tls-starttls'), dc.server, bob, 'imap:// STARTTLS --ca');
    // STARTTLS with an untrusted certificate fails like imaps does
    assertFails(await backup(imap(bob), path.join(root, 'tls-starttls-untrusted'), bob.password), 5, /certificate.*--ca/);
  });

  test('5. server without STARTTLS: imap:// exits 5 before any login; --tls-mode plain works', { skip: dc.skip }, async () => {
    const plain = await startDovecot({ users: [{ ...bob }], ssl: false });
    try {
      await seedMailbox(plain, bob, nastyMailbox({ bigMessage: false }));
      const logFile = path.join(plain.dir, 'dovecot.log');
      const logBefore = (await readFile(logFile, 'utf8')).length;
      const dir = path.join(root, 'no-starttls');
      const r = await backup(imap(bob, plain), dir, bob.password);
      assertFails(r, 5, /STARTTLS.*plain text|plain text.*STARTTLS/i);
      await assertConsistent(dir, 'after exit 5');
      // Dovecot logs the disconnect of a client that never tried to log in
      let log = '';
      for (let i = 0; i < 40 && !/no auth attempts/.test(log); i++) {
        await sleep(50);
        log = (await readFile(logFile, 'utf8')).slice(logBefore);
      }
      assert.match(log, /imap-login: .*Disconnected.*no auth attempts/, `Dovecot log:\n${log}`);
      assert.doesNotMatch(log, /Login: user=<bob>|auth.*bob|Aborted login/, `a login was attempted:\n${log}`);
      assertOk(await backup(imap(bob, plain), dir, bob.password, ['--tls-mode', 'plain']));
      await assertMaildirComplete(dir, plain, bob, '--tls-mode plain');
    } finally {
      await plain.stop();
    }
  });

  test('6a. read-only destination: exit 6; rerun once writable', { skip: dc.skip }, async (t) => {
    const dir = path.join(root, 'ro');
    await mkdir(dir, { recursive: true });
    if (!(await mountOrSkip(t, ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir]))) return;
    try {
      assertFails(await backup(imaps(bob), dir, bob.password, ['--ca', dc.server.caFile]), 6, /read-only|cannot write/);
      // a new archive below the read-only mount point
      assertFails(await backup(imaps(bob), path.join(dir, 'sub'), bob.password, ['--ca', dc.server.caFile]), 6, /cannot write/);
      await exec('mount', ['-o', 'remount,rw', dir]);
      await assertConsistent(dir, 'after exit 6');
      assertOk(await backup(imaps(bob), dir, bob.password, ['--ca', dc.server.caFile]));
      await assertMaildirComplete(dir, dc.server, bob, 'rerun after read-only');
    } finally {
      await umount(dir);
    }
  });

  test('6b. full destination (4 MiB, a 21 MB message): exit 6; rerun after growing it', { skip: dc.skip }, async (t) => {
    const dir = path.join(root, 'full');
    await mkdir(dir, { recursive: true });
    if (!(await mountOrSkip(t, ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]))) return;
    try {
      const r = await backup(imaps(dc.alice), dir, dc.alice.password, ['--ca', dc.server.caFile]);
      assertFails(r, 6, /no space left/);
      await assertConsistent(dir, 'after exit 6 (full)');
      await exec('mount', ['-o', 'remount,size=64m', dir]);
      assertOk(await backup(imaps(dc.alice), dir, dc.alice.password, ['--ca', dc.server.caFile]));
      await assertMaildirComplete(dir, dc.server, dc.alice, 'rerun after disk full');
    } finally {
      await umount(dir);
    }
  });

  test('7. a file in the way: exit 6, the other archive untouched; rerun after removing it', { skip: dc.skip }, async () => {
    const okDir = path.join(root, 'in-the-way-md');
    const file = path.join(root, 'in-the-way-file');
    await writeFile(file, 'not a directory\n');
    const args = (to: string): string[] => [
      'backup', '--from', imaps(bob), '--password-env', 'PW', '--ca', dc.server.caFile, '--to', `maildir:${okDir}`, '--to', to,
    ];
    for (const to of [`maildir:${file}/x`, `mbox:${file}/x`]) {
      const r = await runCli(args(to), { PW: bob.password });
      assertFails(r, 6, /file is in the way|cannot write/);
      await assertConsistent(okDir, `${to}: the other archive after exit 6`);
    }
    await rm(file);
    assertOk(await runCli(args(`mbox:${file}/x`), { PW: bob.password }));
    await assertMaildirComplete(okDir, dc.server, bob, 'maildir after rerun');
    await assertMboxComplete(`${file}/x`, `imaps://bob@127.0.0.1:${dc.server.imapsPort}`, dc.server, bob, 'mbox after rerun');
    assertOk(await backup(imaps(bob), `${file}/y`, bob.password, ['--ca', dc.server.caFile]));
    await assertMaildirComplete(`${file}/y`, dc.server, bob, 'maildir where the file was');
  });

  test('8. lock held by a live process: exit 7 naming the lock; a dead holder is taken over', { skip: dc.skip }, async () => {
    const dir = path.join(root, 'locked');
    const lock = path.join(dir, LOCK);
    await mkdir(dir, { recursive: true });
    const live = `${process.pid} ${hostname()} ${new Date().toISOString()}\n`;
    await writeFile(lock, live);
    const r = await backup(imaps(bob), dir, bob.password, ['--ca', dc.server.caFile]);
    assertFails(r, 7, new RegExp(`pid ${String(process.pid)}\\b.*lock`));
    assert.ok(r.stderr.includes(lock), `message must name the lock file:\n${show(r)}`);
    assert.equal(await readFile(lock, 'utf8'), live, 'the holder\'s lock must be left alone');
    // a live-looking lock from another host is not taken over either (the pid means nothing here)
    await writeFile(lock, `1 not-${hostname()} ${new Date().toISOString()}\n`);
    assertFails(await backup(imaps(bob), dir, bob.password, ['--ca', dc.server.caFile]), 7, /lock/);

    // the holder died (a pid that has exited): taken over
    const child = spawn('true', { stdio: 'ignore' });
    const deadPid = child.pid;
    await new Promise((resolve) => child.once('exit', resolve));
    assert.ok(deadPid !== undefined);
    await writeFile(lock, `${deadPid} ${hostname()} ${new Date().toISOString()}\n`);
    assertOk(await backup(imaps(bob), dir, bob.password, ['--ca', dc.server.caFile]));
    await assertMaildirComplete(dir, dc.server, bob, 'after taking over a stale lock');
    // and with the live lock gone, a rerun has nothing to do and exits 0
    assertOk(await backup(imaps(bob), dir, bob.password, ['--ca', dc.server.caFile]));
    await assertMaildirComplete(dir, dc.server, bob, 'rerun');
  });

  test('9. usage errors: exit 2 before any network or archive I/O; file and command passwords work', { skip: dc.skip }, async () => {
    const trap = await trapServer();
    const from = `imaps://bob@127.0.0.1:${trap.port}`;
    const dir = path.join(root, 'usage');
    const urlPassword = 'url-Pa55-s3cret';
    const pwOpen = path.join(root, 'pw-0644');
    const pwFile = path.join(root, 'pw-0600');
    await writeFile(pwOpen, `${bob.password}\n`);
    await chmod(pwOpen, 0o644);
    await writeFile(pwFile, `${bob.password}\n`, { mode: 0o600 });
    await chmod(pwFile, 0o600);
    const env = { PW: bob.password };
    try {
      const cases: { name: string; args: string[]; message: RegExp }[] = [
        { name: 'missing --to', args: ['--from', from, '--password-env', 'PW'], message: /--to/ },
        { name: 'password in the URL', args: ['--from', `imaps://bob:${urlPassword}@127.0.0.1:${trap.port}`, '--password-env', 'PW', '--to', `maildir:${dir}`], message: /password in the address/ },
        { name: 'two password sources', args: ['--from', from, '--password-env', 'PW', '--password-file', pwFile, '--to', `maildir:${dir}`], message: /only one/ },
        { name: 'password file 0644', args: ['--from', from, '--password-file', pwOpen, '--to', `maildir:${dir}`], message: /readable by others/ },
        { name: 'password command exits 1', args: ['--from', from, '--password-command', 'false', '--to', `maildir:${dir}`], message: /password command/ },
        { name: 'password command not found', args: ['--from', from, '--password-command', 'no-such-command-mf', '--to', `maildir:${dir}`], message: /password command/ },
        { name: 'password variable unset', args: ['--from', from, '--password-env', 'MF_NO_SUCH_VAR', '--to', `maildir:${dir}`], message: /MF_NO_SUCH_VAR/ },
      ];
      const results = await Promise.all(cases.map((c) => runCli(['backup', ...c.args], env)));
      cases.forEach((c, i) => {
        const r = results[i] as CliResult;
        try {
          assertFails(r, 2, c.message, { secrets: [urlPassword] });
        } catch (e: unknown) {
          throw new Error(`${c.name}: ${e instanceof Error ? e.message : String(e)}`);
        }
      });
      assert.equal(trap.hits(), 0, 'a usage error opened a connection');
      assert.ok(!existsSync(dir), 'a usage error created the archive');
    } finally {
      await trap.close();
    }
    // the same sources, correctly set up, against the real server
    const viaFile = path.join(root, 'pw-file');
    const viaCommand = path.join(root, 'pw-command');
    const [f, c] = await Promise.all([
      runCli(['backup', '--from', imaps(bob), '--ca', dc.server.caFile, '--password-file', pwFile, '--to', `maildir:${viaFile}`], {}),
      runCli(['backup', '--from', imaps(bob), '--ca', dc.server.caFile, '--password-command', `printf %s ${bob.password}`, '--to', `maildir:${viaCommand}`], {}),
    ]);
    assertOk(f);
    assertOk(c);
    await assertMaildirComplete(viaFile, dc.server, bob, '--password-file');
    await assertMaildirComplete(viaCommand, dc.server, bob, '--password-command');
  });

  test('10. sessions kicked mid-run: exit 0, every message exactly once', { skip: dc.skip, timeout: 60_000 }, async () => {
    const doveadm = findDoveadm();
    assert.ok(doveadm !== undefined, 'doveadm not found (it comes with dovecot-core)');
    const dir = path.join(root, 'kicked');
    const running = runCli(
      ['backup', '--from', imap(carol), '--ca', dc.server.caFile, '--password-env', 'PW', '--to', `maildir:${dir}`, '--connections', '1', '--batch-mb', '1'],
      { PW: carol.password },
      { timeoutMs: 50_000 },
    );
    let finished = false;
    void running.then(() => (finished = true));
    const kick = async (): Promise<boolean> => {
      // exit 0 and "carol" in the output: sessions were kicked; exit 68 (EX_NOUSER): nobody logged in
      try {
        const { stdout } = await exec(doveadm, ['-c', dc.server.confFile, 'kick', carol.name]);
        return stdout.includes(carol.name);
      } catch {
        return false;
      }
    };
    let kicks = 0;
    await sleep(300);
    for (let round = 0; round < 2 && !finished; round++) {
      const deadline = Date.now() + 5_000;
      while (!finished && Date.now() < deadline) {
        if (await kick()) {
          kicks++;
          break;
        }
        await sleep(50);
      }
      await sleep(1_300); // the first retry comes after 1 s: let it log in and fetch again
    }
    const r = await running;
    assertOk(r);
    assert.ok(kicks >= 1, `no session was kicked (the run took ${r.ms} ms)`);
    // A kick mid-FETCH is retried ("retrying" on stderr); one that lands between two commands only
    // closes an idle connection, which the pool replaces silently. Either way the archive is exact:
    await assertMaildirComplete(dir, dc.server, carol, `after ${kicks} kick(s)`);
  });
});
