import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { seedMailbox, type SeedFolder } from '../../scripts/dev/seed.js';
import { rowIdentity, shardOf } from '../../src/batch/shard.js';
import type { RowOutcome } from '../../src/batch/report.js';
import { runCli } from '../helpers/cli.js';
import { tcpProxy } from '../helpers/proxy.js';
import { messageCount } from '../helpers/compare.js';
import { withDovecot, type Account } from '../helpers/server.js';

/**
 * `mailferry batch` against one Dovecot with many accounts: mixed backup and migrate rows, one
 * target refusing its password, one target over quota; `--jobs`; shards run as concurrent
 * processes (one through JOB_COMPLETION_INDEX), one killed with SIGKILL and rerun.
 */
const acct = (name: string): Account => ({ name: `batch-${name}`, password: `pw-${name}-s3cret` });
const sources = Array.from({ length: 8 }, (_v, i) => acct(`s${i + 1}`));
const targets = Array.from({ length: 7 }, (_v, i) => acct(`t${i + 1}`));
const full = acct('full');
const dc = withDovecot({ users: [...sources, ...targets, { ...full, quota: { storage: '12k' } }], dovecot: { quota: true } });

const PER_FOLDER = 60;
function mailbox(who: string): SeedFolder[] {
  const msg = (folder: string, i: number): { raw: Buffer } => ({
    raw: Buffer.from(`From: ${who}@example.org\r\nTo: x@example.org\r\nSubject: ${folder} ${i}\r\nMessage-ID: <${who}.${folder}.${i}@batch>\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n\r\n${'body line\r\n'.repeat(40)}`),
  });
  return ['INBOX', 'Archive'].map((path) => ({ path, messages: Array.from({ length: PER_FOLDER }, (_v, i) => msg(path, i)) }));
}
const TOTAL = 2 * PER_FOLDER;

/** Messages in a Maildir archive: files in every cur/ and new/. */
async function archived(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && /(^|\/)(cur|new)$/.test(e.parentPath)) n++;
  }
  return n;
}

function readReport(text: string): RowOutcome[] {
  return text.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as RowOutcome);
}

describe('mailferry batch', { skip: dc.skip }, () => {
  let root = '';
  const env = (): Record<string, string> => ({
    XDG_STATE_HOME: join(root, 'state'),
    ...Object.fromEntries([...sources, ...targets, full].map((a) => [`PW_${a.name.replace(/-/g, '_').toUpperCase()}`, a.password])),
    WRONG_PW: 'not-the-password',
  });
  const pwEnv = (a: Account): string => `PW_${a.name.replace(/-/g, '_').toUpperCase()}`;
  const imap = (a: Account): string => `imap://${a.name}@127.0.0.1:${dc.server.imapPort}`;
  const secrets = (): string[] => [...sources, ...targets, full].map((a) => a.password);

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-batch-'));
    for (const s of sources) await seedMailbox(dc.server, s, mailbox(s.name));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('a bad file: every problem of every row listed, exit 2, nothing started', async () => {
    const file = join(root, 'bad.csv');
    await writeFile(
      file,
      [
        'command,from,to,password-env,password,frobnicate,password-file',
        `backup,${imap(sources[0] as Account)},maildir:${join(root, 'bad-a')},WRONG_PW,,,`,
        `frob,${imap(sources[1] as Account)},maildir:${join(root, 'bad-b')},WRONG_PW,,,`,
        `backup,${imap(sources[2] as Account)},maildir:${join(root, 'bad-c')},WRONG_PW,hunter2-secret,,`,
        `backup,${imap(sources[3] as Account)},maildir:${join(root, 'bad-d')},WRONG_PW,,yes,`,
        `migrate,${imap(sources[4] as Account)},,WRONG_PW,,,`,
        `backup,${imap(sources[5] as Account)},maildir:${join(root, 'bad-a')},WRONG_PW,,,`,
        `backup,${imap(sources[0] as Account)},maildir:${join(root, 'bad-a')},WRONG_PW,,,`,
        `backup,${imap(sources[6] as Account)},maildir:${join(root, 'bad-e')},NOT_SET_ANYWHERE,,,`,
        `backup,${imap(sources[7] as Account)},maildir:${join(root, 'bad-f')},,,,${join(root, 'open-pw')}`,
      ].join('\n'),
    );
    await writeFile(join(root, 'open-pw'), 'pw\n', { mode: 0o644 });
    const r = await runCli(['batch', file, '--jobs', '2'], env());
    assert.equal(r.status, 2, r.stderr);
    const nowhere = await runCli(['batch', file, '--report', join(root, 'no-such-dir', 'r.jsonl')], env());
    assert.equal(nowhere.status, 2);
    assert.match(nowhere.stderr, /9 problems, .*--report .*no-such-dir\/r\.jsonl: the directory .*no-such-dir does not exist/);
    assert.match(r.stderr, /8 problems, nothing was started/);
    assert.match(r.stderr, /row 8 \(line 9\): environment variable NOT_SET_ANYWHERE is not set/);
    assert.match(r.stderr, /row 9 \(line 10\): secret file .*open-pw is readable by others/);
    assert.match(r.stderr, /row 2 \(line 3\): "frob" is not a command/);
    assert.match(r.stderr, /row 3 \(line 4\): "password": secrets are not written/);
    assert.match(r.stderr, /row 4 \(line 5\): Unknown argument: frobnicate/);
    assert.match(r.stderr, /row 5 \(line 6\): .*--to is required/);
    assert.match(r.stderr, /row 5 \(line 6\): .*--target-password-env/);
    assert.match(r.stderr, /row 6 \(line 7\): the archive .*bad-a is also written by row 1/);
    assert.match(r.stderr, /row 7 \(line 8\): the same job as row 1/);
    assert.equal(r.stderr.includes('hunter2-secret'), false);
    for (const d of ['bad-a', 'bad-b', 'bad-c', 'state']) await assert.rejects(readdir(join(root, d)), `${d} was created`);
  });

  test('--jobs 4 over 13 accounts: backup and migrate rows; a wrong password and a full target fail alone; exit is the worst row\'s; the report lists each row, no secret', async () => {
    const [s1, s2, s3, s4, s5, s6, s7, s8] = sources as [Account, Account, Account, Account, Account, Account, Account, Account];
    const [t1, t2, , , , t6, t7] = targets as [Account, Account, Account, Account, Account, Account, Account];
    const file = join(root, 'jobs.csv');
    const ca = dc.server.caFile;
    await writeFile(
      file,
      [
        'command,from,to,to,password-env,ca,target-password-env,target-ca',
        `backup,${imap(s1)},maildir:${join(root, 'a1')},mbox:${join(root, 'a1-mbox')},${pwEnv(s1)},${ca},,`,
        `migrate,${imap(s2)},${imap(t1)},,${pwEnv(s2)},${ca},${pwEnv(t1)},${ca}`,
        `migrate,${imap(s3)},${imap(t2)},,${pwEnv(s3)},${ca},WRONG_PW,${ca}`,
        `migrate,${imap(s4)},${imap(full)},,${pwEnv(s4)},${ca},${pwEnv(full)},${ca}`,
        `backup,${imap(s5)},maildir:${join(root, 'a5')},,${pwEnv(s5)},${ca},,`,
        `backup,${imap(s6)},maildir:${join(root, 'a6')},,${pwEnv(s6)},${ca},,`,
        `migrate,${imap(s7)},${imap(t6)},,${pwEnv(s7)},${ca},${pwEnv(t6)},${ca}`,
        `migrate,${imap(s8)},${imap(t7)},,${pwEnv(s8)},${ca},${pwEnv(t7)},${ca}`,
      ].join('\n'),
    );
    const r = await runCli(['batch', file, '--jobs', '4', '--verify'], env(), { timeoutMs: 240_000 });
    assert.equal(r.status, 4, `${r.stdout}\n${r.stderr}`);
    const report = readReport(await readFile(join(root, 'jobs.report.jsonl'), 'utf8'));
    assert.deepEqual(report.map((o) => [o.row, o.command, o.status, o.exit]), [
      [1, 'backup', 'ok', 0],
      [2, 'migrate', 'ok', 0],
      [3, 'migrate', 'failed', 4],
      [4, 'migrate', 'partial', 3],
      [5, 'backup', 'ok', 0],
      [6, 'backup', 'ok', 0],
      [7, 'migrate', 'ok', 0],
      [8, 'migrate', 'ok', 0],
    ]);
    for (const o of report.filter((x) => x.exit === 0)) {
      assert.equal(o.messages, TOTAL, JSON.stringify(o));
      assert.deepEqual(o.verify, { ok: true, differences: 0 });
    }
    assert.match(report[2]?.error ?? '', /auth|login|password|credentials/i);
    assert.equal(await archived(join(root, 'a1')), TOTAL);
    assert.equal(await archived(join(root, 'a5')), TOTAL);
    assert.equal(await archived(join(root, 'a6')), TOTAL);
    for (const t of [t6, t7]) assert.equal(await messageCount(dc.server, t), TOTAL);
    assert.equal(await messageCount(dc.server, t1), TOTAL);
    assert.equal(await messageCount(dc.server, t2), 0);
    assert.match(r.stdout, /batch: 8 rows, 6 ok, 1 failed, 1 partial; .*exit 4/);
    const everything = `${await readFile(join(root, 'jobs.report.jsonl'), 'utf8')}${r.stdout}${r.stderr}`;
    for (const s of secrets()) assert.equal(everything.includes(s), false, 'a password in the report or output');

    // --report FILE.csv: the same rows as CSV; a rerun copies nothing again.
    const again = await runCli(['batch', file, '--jobs', '2', '--report', join(root, 'jobs.csv.report.csv')], env(), { timeoutMs: 240_000 });
    assert.equal(again.status, 4, again.stderr);
    const csv = (await readFile(join(root, 'jobs.csv.report.csv'), 'utf8')).trim().split('\r\n');
    assert.equal(csv.length, 9);
    assert.match(csv[0] ?? '', /^row,line,command,source,destinations,status,exit,messages,/);
    assert.match(csv[1] ?? '', /^1,2,backup,imap:\/\/batch-s1@127\.0\.0\.1:\d+,.*,ok,0,0,0,/);
  });

  test('SIGTERM stops the batch: exit 130, the report has every row (done, interrupted or not run); a rerun finishes, nothing twice', async () => {
    const file = join(root, 'stop.csv');
    const dir = (i: number): string => join(root, 'stop', String(i));
    await writeFile(file, ['command,from,to,password-env,ca,batch-mb', ...sources.slice(0, 4).map((s, i) => `backup,${imap(s)},maildir:${dir(i)},${pwEnv(s)},${dc.server.caFile},0.05`)].join('\n'));
    const reportPath = join(root, 'stop.report.jsonl');
    const r = await runCli(['batch', file], env(), {
      timeoutMs: 120_000,
      onSpawn: (child) => {
        const timer = setInterval(() => {
          readFile(reportPath, 'utf8').then(
            () => {
              clearInterval(timer);
              child.kill('SIGTERM');
            },
            () => undefined,
          );
        }, 10);
        child.once('exit', () => clearInterval(timer));
      },
    });
    assert.equal(r.status, 130, `${r.stdout}\n${r.stderr}`);
    const report = readReport(await readFile(reportPath, 'utf8'));
    assert.deepEqual(report.map((o) => o.row), [1, 2, 3, 4]);
    assert.equal(report[0]?.status, 'ok');
    assert.ok(report.slice(1).every((o) => o.status === 'interrupted' || o.status === 'not-run' || o.status === 'ok'), JSON.stringify(report));
    assert.equal(report[3]?.status, 'not-run');
    const again = await runCli(['batch', file], env(), { timeoutMs: 120_000 });
    assert.equal(again.status, 0, again.stderr);
    for (let i = 0; i < 4; i++) assert.equal(await archived(dir(i)), TOTAL);
  });

  test('--jobs 4 keeps to a profile\'s limits.serverConnections across the rows on one server (the account cap across rows: unit/batch.test.ts)', async () => {
    // A proxy in front of Dovecot counts the connections open at once, in all and per account.
    let open = 0;
    let peak = 0;
    const proxy = await tcpProxy(dc.server.imapPort, (client, upstream, drop) => {
      open++;
      peak = Math.max(peak, open);
      let closed = false;
      const close = (): void => {
        if (!closed) open--;
        closed = true;
      };
      client.once('close', close);
      client.pipe(upstream);
      upstream.pipe(client);
      void drop;
    });
    try {
      const run = async (limits: Record<string, number>, tag: string): Promise<number> => {
        const profile = join(root, `capped-${tag}.json`);
        await writeFile(profile, JSON.stringify({ name: 'capped', description: 'test', domains: ['capped.example'], imap: { host: '127.0.0.1', port: proxy.port, tls: 'starttls' }, limits, auth: { methods: ['password'] } }));
        const file = join(root, `capped-${tag}.csv`);
        const rows = sources.slice(0, 4).map((s, i) => `backup,imap://${s.name}@127.0.0.1:${proxy.port},maildir:${join(root, `capped-${tag}`, String(i))},${pwEnv(s)},${dc.server.caFile},${profile},2,0.05`);
        await writeFile(file, ['command,from,to,password-env,ca,profile,connections,batch-mb', ...rows].join('\n'));
        peak = 0;
        const r = await runCli(['batch', file, '--jobs', '4'], env(), { timeoutMs: 240_000 });
        assert.equal(r.status, 0, r.stderr);
        for (let i = 0; i < 4; i++) assert.equal(await archived(join(root, `capped-${tag}`, String(i))), TOTAL);
        return peak;
      };
      const free = await run({ connections: 2 }, 'free');
      const capped = await run({ connections: 2, serverConnections: 3 }, 'capped');
      assert.ok(free > 3, `without a server cap the 4 rows together opened ${free} connections at once`);
      assert.ok(capped <= 3, `with serverConnections 3 the rows together opened ${capped} at once`);
    } finally {
      await proxy.close();
    }
  });

  test('3 shards as 3 concurrent processes (one by JOB_COMPLETION_INDEX), one killed with SIGKILL and rerun: every row once, every account copied exactly once; a rerun redoes nothing', async () => {
    const file = join(root, 'shards.jsonl');
    const rows = [
      ...[5, 6, 7].map((i) => ({ command: 'migrate', from: imap(sources[i] as Account), to: imap(targets[i - 3] as Account), passwordEnv: pwEnv(sources[i] as Account), targetPasswordEnv: pwEnv(targets[i - 3] as Account), ca: dc.server.caFile, targetCa: dc.server.caFile, connections: 2 })),
      ...sources.map((s, i) => ({ command: 'backup', from: imap(s), to: [`maildir:${join(root, 'shard-archive', String(i))}`], passwordEnv: pwEnv(s), ca: dc.server.caFile, batchMb: 0.05 })),
    ];
    await writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n'));
    const reports = join(root, 'reports');
    await mkdir(reports);
    const shardRows = [1, 2, 3].map((i) => rows.filter((r) => shardOf(rowIdentity(r), 3) === i).length);
    assert.equal(shardRows.reduce((a, b) => a + b, 0), rows.length);
    // Kill the biggest shard once its first row is reported.
    const victim = shardRows.indexOf(Math.max(...shardRows)) + 1;
    const args = (i: number): { argv: string[]; extra: Record<string, string> } =>
      i === 3 ? { argv: ['batch', file, '--shards', '3', '--report', `${reports}/`], extra: { JOB_COMPLETION_INDEX: '2' } } : { argv: ['batch', file, '--shard', `${i}/3`, '--report', `${reports}/`], extra: {} };
    const reportOf = (i: number): string => join(reports, `shards.shard-${i}-of-3.report.jsonl`);
    let killedAfter = -1;
    const runs = [1, 2, 3].map((i) => {
      const a = args(i);
      const watch = (child: ChildProcess): void => {
        if (i !== victim) return;
        const timer = setInterval(() => {
          readFile(reportOf(i), 'utf8').then(
            (t) => {
              killedAfter = readReport(t).length;
              clearInterval(timer);
              child.kill('SIGKILL');
            },
            () => undefined,
          );
        }, 20);
        child.once('exit', () => clearInterval(timer));
      };
      return runCli(a.argv, { ...env(), ...a.extra }, { timeoutMs: 240_000, onSpawn: watch });
    });
    const results = await Promise.all(runs);
    results.forEach((r, i) => {
      if (i + 1 === victim) assert.equal(r.signal, 'SIGKILL', `shard ${victim} ended before it was killed: ${r.stderr}`);
      else assert.equal(r.status, 0, `shard ${i + 1}: ${r.stdout}\n${r.stderr}`);
    });
    assert.ok(killedAfter >= 1 && killedAfter < (shardRows[victim - 1] ?? 0), `killed after ${killedAfter} of ${shardRows[victim - 1]} rows`);
    const rerun = await runCli(args(victim).argv, { ...env(), ...args(victim).extra }, { timeoutMs: 240_000 });
    assert.equal(rerun.status, 0, rerun.stderr);

    const all = [1, 2, 3].flatMap((i) => readReport(readFileSync(reportOf(i), 'utf8')));
    assert.deepEqual(all.map((o) => o.row).sort((a, b) => a - b), rows.map((_r, i) => i + 1), 'every row in exactly one shard');
    assert.ok(all.every((o) => o.status === 'ok' && o.exit === 0), JSON.stringify(all));
    for (const t of targets.slice(2, 5)) assert.equal(await messageCount(dc.server, t), TOTAL, `${t.name}: each message once`);
    for (let i = 0; i < sources.length; i++) assert.equal(await archived(join(root, 'shard-archive', String(i))), TOTAL);

    // A finished shard run again: every row connects, finds nothing new, copies nothing.
    const done = [1, 2, 3].find((i) => i !== victim && (shardRows[i - 1] ?? 0) > 0) ?? victim;
    const redo = await runCli([...args(done).argv, '--json'], { ...env(), ...args(done).extra }, { timeoutMs: 240_000 });
    assert.equal(redo.status, 0, redo.stderr);
    const summary = JSON.parse(redo.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
    assert.deepEqual([summary['type'], summary['rows'], summary['total'], summary['messages'], summary['exit']], ['batch', shardRows[done - 1], rows.length, 0, 0]);
    const redone = readReport(readFileSync(reportOf(done), 'utf8'));
    assert.equal(redone.length, shardRows[done - 1]);
    assert.ok(redone.every((o) => o.messages === 0 && o.unchanged === TOTAL), JSON.stringify(redone));
  });
});
