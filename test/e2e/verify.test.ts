import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nastyMailbox } from '../fixtures/nasty.js';
import { runCli } from '../helpers/cli.js';
import { damageMaildir, differences, runJsonLines, type JsonLinesRun as Run } from '../helpers/verify-run.js';
import { cutProxy } from '../helpers/cut-proxy.js';
import { selectableFolders, sysFlags } from '../helpers/compare.js';
import { fetchAll, withDovecot, type Account } from '../helpers/server.js';
import { EXIT } from '../../src/domain/errors.js';

/**
 * `mailferry verify` against Dovecot: clean copies (backup to Maildir and mbox, POP3 backup,
 * migrate, restore) verify with exit 0 at both depths; a damaged copy is named difference by
 * difference, with EXIT.differences; verify changes nothing on the server or in the archive.
 */
const bob: Account = { name: 'verify-bob', password: 'verify-bob-pw' };
const carol: Account = { name: 'verify-carol', password: 'verify-carol-pw' };
const dan: Account = { name: 'verify-dan', password: 'verify-dan-pw' };
const dc = withDovecot({ nasty: true, users: [bob, carol, dan] });


describe('verify', { skip: dc.skip }, () => {
  let root = '';
  const env = (): Record<string, string> => ({ ALICE_PW: dc.alice.password, BOB_PW: bob.password, CAROL_PW: carol.password, DAN_PW: dan.password, XDG_STATE_HOME: join(root, 'state') });
  const alice = (scheme = 'imaps'): string[] => {
    const port = scheme === 'imaps' ? dc.server.imapsPort : dc.server.pop3sPort;
    return ['--from', `${scheme}://${dc.alice.name}@127.0.0.1:${port}`, '--ca', dc.server.caFile, '--password-env', 'ALICE_PW'];
  };
  const target = (user: Account, env: string, prefix = ''): string[] => ['--to', `imaps://${user.name}@127.0.0.1:${dc.server.imapsPort}`, `--${prefix}ca`, dc.server.caFile, `--${prefix}password-env`, env];

  const run = (args: string[]): Promise<Run> => runJsonLines(args, env());


  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-verify-'));
    const b = await run(['backup', '--json', ...alice(), '--to', `maildir:${join(root, 'md')}`, '--to', `mbox:${join(root, 'mbox')}`]);
    assert.equal(b.status, 0, b.stderr);
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('a clean backup (Maildir and mbox) verifies at both depths; --json parses', async () => {
    const total = nastyMailbox().reduce((n, f) => n + f.messages.length, 0);
    for (const depth of [[], ['--quick']]) {
      const r = await run(['verify', '--json', ...alice(), '--to', `maildir:${join(root, 'md')}`, '--to', `mbox:${join(root, 'mbox')}`, ...depth]);
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.deepEqual(differences(r), []);
      const last = r.lines[r.lines.length - 1] as { type: string; ok: boolean; copies: { depth: string; folders: { source: number; copy: number }[] }[] };
      assert.equal(last.type, 'verify');
      assert.equal(last.ok, true);
      assert.equal(last.copies.length, 2);
      for (const c of last.copies) {
        assert.equal(c.depth, depth.length === 0 ? 'full' : 'quick');
        assert.equal(c.folders.reduce((n, f) => n + f.source, 0), total);
        assert.equal(c.folders.reduce((n, f) => n + f.copy, 0), total);
      }
    }
    // Without --json: one summary line per copy on stdout.
    const text = await runCli(['verify', ...alice(), '--to', `maildir:${join(root, 'md')}`], env(), { timeoutMs: 120_000 });
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^verify maildir:.* \(full\): \d+ messages in \d+ folders: no differences/);
  });

  test('verify changes nothing: the archive files (mtimes included) and the server (flags, \\Seen) are as before', async () => {
    const before = { files: await snapshot(root), server: await serverState(alice0()) };
    const r = await run(['verify', '--json', ...alice(), '--to', `maildir:${join(root, 'md')}`, '--to', `mbox:${join(root, 'mbox')}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(await snapshot(root), before.files);
    assert.deepEqual(await serverState(alice0()), before.server);
  });

  test('a damaged copy: verify names exactly the five differences, at both depths, with its exit code', async () => {
    const md = join(root, 'damaged');
    await cp(join(root, 'md'), md, { recursive: true, preserveTimestamps: true });
    const cur = join(md, 'cur');
    const files = (await readdir(cur)).sort();
    const withSubject: string[] = [];
    for (const f of files) if (/^Subject: [A-Za-z]/m.test(await readFile(join(cur, f), 'latin1'))) withSubject.push(f);
    const [gone, altered, flagged] = withSubject as [string, string, string];
    // 1. one message removed, 2. one byte of another altered (in its Subject), its size and mtime
    // kept, 3. a flag changed on a third (the info part of its name), 4. a stray message
    await damageMaildir(cur, gone, altered, flagged);
    // 5. a folder deleted
    await rm(join(md, '.Drafts'), { recursive: true });

    for (const depth of [[], ['--quick']]) {
      const r = await run(['verify', '--json', ...alice(), '--to', `maildir:${md}`, ...depth]);
      assert.equal(r.status, EXIT.differences, `${r.stdout}\n${r.stderr}`);
      const found = differences(r).map((d) => `${d['kind'] as string} ${d['folder'] as string}`).sort();
      assert.deepEqual(found, ['altered INBOX', 'extra INBOX', 'flags INBOX', 'folder-missing Drafts', 'missing INBOX'], JSON.stringify(differences(r)));
      const byKind = new Map(differences(r).map((d) => [d['kind'], d]));
      assert.ok(typeof byKind.get('missing')?.['id'] === 'string');
      assert.equal(byKind.get('extra')?.['messageId'], '<stray@example.org>');
      assert.equal(r.lines[r.lines.length - 1]?.['ok'], false);
    }
    // A sixth: a date changed (the file's mtime is the INTERNALDATE), and --ignore dates leaves it out.
    const dated = join(cur, withSubject[3] as string);
    await utimes(dated, new Date('2001-01-01T00:00:00Z'), new Date('2001-01-01T00:00:00Z'));
    const withDate = await run(['verify', '--json', '--quick', ...alice(), '--to', `maildir:${md}`]);
    const dates = differences(withDate).filter((d) => d['kind'] === 'date');
    assert.equal(dates.length, 1, JSON.stringify(dates));
    assert.match(dates[0]?.['detail'] as string, /^date: source \d{4}-\d\d-\d\dT[\d:.]+Z, copy 2001-01-01T00:00:00\.000Z$/);
    const noDates = await run(['verify', '--json', '--quick', ...alice(), '--to', `maildir:${md}`, '--ignore', 'dates']);
    assert.equal(differences(noDates).filter((d) => d['kind'] === 'date').length, 0);
    const text = await runCli(['verify', ...alice(), '--to', `maildir:${md}`, '--ignore', 'flags,extra,dates'], env(), { timeoutMs: 120_000 });
    assert.equal(text.status, EXIT.differences);
    assert.match(text.stdout, /3 differences \(1 missing, 0 extra, 1 altered, 0 flags, 0 dates, 1 folders missing, 0 folders extra\)/);
    assert.match(text.stderr, /^missing maildir:.* INBOX id \d+/m);
  });

  test('a clean migrate and a clean restore verify at both depths', async () => {
    const m = await run(['migrate', '--json', ...alice(), ...target(bob, 'BOB_PW', 'target-')]);
    assert.equal(m.status, 0, m.stderr);
    const restore = await run(['restore', '--json', '--from', `maildir:${join(root, 'md')}`, ...target(carol, 'CAROL_PW')]);
    assert.equal(restore.status, 0, restore.stderr);
    for (const depth of [[], ['--quick']]) {
      const vm = await run(['verify', '--json', ...alice(), ...target(bob, 'BOB_PW', 'target-'), ...depth]);
      assert.equal(vm.status, 0, `${vm.stdout}\n${vm.stderr}`);
      const vr = await run(['verify', '--json', '--from', `maildir:${join(root, 'md')}`, ...target(carol, 'CAROL_PW'), ...depth]);
      assert.equal(vr.status, 0, `${vr.stdout}\n${vr.stderr}`);
    }
    // A message the target lacks is named.
    const c = await (await import('../helpers/server.js')).connect(dc.server, bob);
    await c.mailboxOpen('INBOX');
    await c.messageDelete('1', { uid: true });
    await c.logout();
    const after = await run(['verify', '--json', '--quick', ...alice(), ...target(bob, 'BOB_PW', 'target-')]);
    assert.equal(after.status, EXIT.differences);
    assert.deepEqual(differences(after).map((d) => `${d['kind'] as string} ${d['folder'] as string}`), ['missing INBOX']);
  });

  test('backup --verify checks the copy right after it (quick; --verify=full digests); verify --config takes the backup\'s job file', async () => {
    for (const [flag, depth] of [['--verify', 'quick'], ['--verify=full', 'full']] as const) {
      const to = join(root, `after-${depth}`);
      const r = await run(['backup', '--json', ...alice(), '--to', `maildir:${to}`, flag]);
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      const types = r.lines.map((l) => l['type']);
      assert.ok(types.includes('summary'));
      const last = r.lines[r.lines.length - 1] as { type: string; ok: boolean; copies: { depth: string }[] };
      assert.equal(last.type, 'verify');
      assert.equal(last.ok, true);
      assert.equal(last.copies[0]?.depth, depth);
    }
    const job = join(root, 'job.json');
    const [, from, , ca] = alice();
    await writeFile(job, JSON.stringify({ command: 'backup', from, ca, passwordEnv: 'ALICE_PW', to: [`maildir:${join(root, 'md')}`], exclude: ['Drafts'] }));
    const r = await run(['verify', '--json', '--quick', '--config', job]);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const folders = (r.lines[r.lines.length - 1] as { copies: { folders: { folder: string }[] }[] }).copies[0]?.folders.map((f) => f.folder);
    assert.ok(folders !== undefined && folders.includes('INBOX') && !folders.includes('Drafts'), String(folders));
  });

  test('the 20 MB message is verified with memory bounded as for backup (peak RSS, Maildir and mbox copies)', async () => {
    const preload = join(root, 'maxrss.cjs');
    await writeFile(preload, "process.on('exit', () => require('fs').writeFileSync(process.env.MAXRSS_FILE, String(process.resourceUsage().maxRSS)));\n");
    const peak = async (cmd: string, to: string, extra: string[] = []): Promise<number> => {
      const file = join(root, `rss-${cmd}`);
      const r = await runCli([cmd, ...alice(), '--to', to, '--include', 'Archive/2023', ...extra], { ...env(), MAXRSS_FILE: file, NODE_OPTIONS: `--require ${preload}` }, { timeoutMs: 120_000 });
      assert.equal(r.status, 0, r.stderr);
      return Number(await readFile(file, 'utf8')) / 1024; // KiB -> MiB
    };
    const backup = await peak('backup', `maildir:${join(root, 'rss-md')}`);
    const verify = await peak('verify', `maildir:${join(root, 'rss-md')}`);
    // The mbox copy: its source indexes the file and streams the large message (issue 16).
    await peak('backup', `mbox:${join(root, 'rss-mbox')}`);
    const mbox = await peak('verify', `mbox:${join(root, 'rss-mbox')}`);
    const mboxQuick = await peak('verify', `mbox:${join(root, 'rss-mbox')}`, ['--quick']);
    process.stderr.write(
      `peak RSS with the 20 MB message: backup ${backup.toFixed(1)} MiB, verify (full) ${verify.toFixed(1)} MiB, ` +
        `verify of the mbox copy ${mbox.toFixed(1)} MiB full, ${mboxQuick.toFixed(1)} MiB quick\n`,
    );
    // Held whole on both sides, the message would add 40 MB or more.
    for (const [what, v] of [['maildir', verify], ['mbox', mbox], ['mbox --quick', mboxQuick]] as const) {
      assert.ok(v < backup + 20, `verify (${what}) ${v.toFixed(1)} MiB, backup ${backup.toFixed(1)} MiB`);
    }
  });

  test('a connection lost mid-verify is retried: the folder is compared again, no difference twice, exit 0', async () => {
    const proxy = await cutProxy(dc.server.imapPort, 'BODY[] {');
    try {
      const from = ['--from', `imap://${dc.alice.name}@127.0.0.1:${proxy.port}`, '--tls-mode', 'plain', '--password-env', 'ALICE_PW'];
      const r = await run(['verify', '--json', ...from, '--to', `maildir:${join(root, 'md')}`, '--include', 'INBOX']);
      assert.equal(proxy.cuts, 1, 'one body fetch was cut');
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /verify INBOX: .*retrying/);
      assert.deepEqual(differences(r), []);
    } finally {
      await proxy.close();
    }
  });

  test('verify maps folders as the migrate did (--map): with the same flags exit 0, with another --map the folder is named missing', async () => {
    const map = ['--map', 'Sent=Gesendet', '--include', 'Sent', '--include', 'INBOX'];
    const m = await run(['migrate', '--json', ...alice(), ...target(dan, 'DAN_PW', 'target-'), ...map]);
    assert.equal(m.status, 0, m.stderr);
    const same = await run(['verify', '--json', '--quick', ...alice(), ...target(dan, 'DAN_PW', 'target-'), ...map]);
    assert.equal(same.status, 0, `${same.stdout}\n${same.stderr}`);
    const sent = (same.lines[same.lines.length - 1] as { copies: { folders: { folder: string; target: string }[] }[] }).copies[0]?.folders.find((f) => f.folder === 'Sent');
    assert.equal(sent?.target, 'Gesendet');
    // (Without --map, Sent would go to Gesendet too: migrate created it as the target's \\Sent.)
    const unmapped = await run(['verify', '--json', '--quick', ...alice(), ...target(dan, 'DAN_PW', 'target-'), '--map', 'Sent=Elsewhere', '--include', 'Sent', '--include', 'INBOX']);
    assert.equal(unmapped.status, EXIT.differences, `${unmapped.stdout}\n${unmapped.stderr}`);
    // Gesendet is not named extra: --include selects the copy's folders by their own names too.
    assert.deepEqual(differences(unmapped).map((d) => `${d['kind'] as string} ${d['folder'] as string} ${String(d['target'])}`), ['folder-missing Sent Elsewhere']);
  });

  // Last: Dovecot sets \\Seen on what POP3 RETR reads, so later IMAP verifies would (rightly) see flags differ.
  test('a POP3 backup verifies (no flags or dates to compare: said so)', async () => {
    const b = await run(['backup', '--json', ...alice('pop3s'), '--to', `maildir:${join(root, 'pop')}`]);
    assert.equal(b.status, 0, b.stderr);
    for (const depth of [[], ['--quick']]) {
      const r = await run(['verify', '--json', ...alice('pop3s'), '--to', `maildir:${join(root, 'pop')}`, ...depth]);
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.deepEqual(differences(r), []);
      assert.ok(r.lines.some((l) => l['kind'] === 'known'), 'the missing flags and dates are named');
    }
  });

  const alice0 = (): Account => dc.alice;
  async function serverState(user: Account): Promise<string> {
    const out: string[] = [];
    for (const path of await selectableFolders(dc.server, user)) {
      for (const m of await fetchAll(dc.server, user, path)) out.push(`${path} ${m.uid} ${[...sysFlags(m.flags)].sort().join(' ')}`);
    }
    return out.join('\n');
  }
});

/** Every file under `dir`: path, size, mtime and content hash. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    const st = await stat(p);
    out.push(`${p} ${st.size} ${st.mtimeMs} ${createHash('sha256').update(await readFile(p)).digest('hex')}`);
  }
  return out.sort();
}
