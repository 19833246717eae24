/**
 * A server's `* BYE` is a lost connection (src/drivers/imap/errors.ts, assertAlive), whatever
 * imapflow does with it: a fault-injecting proxy (test/helpers/fault-proxy.ts) in front of
 * Dovecot's plain IMAP port sends `* BYE shutting down` at the end of a server response and closes
 * the connection D ms later. A backup through it must never report success without every message
 * of the server in the archive, and with its retries it must finish in the same run.
 *
 * Where the BYE lands decides what imapflow does. In the middle of a command's answer, imapflow
 * 2.10.2 fails the command itself. Right after a command completed, the next command finds a
 * connection imapflow closes on the next turn of the event loop: a download() then returns
 * nothing, which without our check passed for "expunged meanwhile" (exit 0, a message missing;
 * measured on 2.10.2 with the check disabled). So half the runs put the BYE after a random number
 * of the server's bytes, the other half right after a random command completion; the folder mixes
 * small messages (one UID FETCH per batch) with messages over the stream threshold (download()).
 *
 * The same proxy in front of an IMAP target: a migrate whose target sends BYE after a random
 * command (APPEND, MULTIAPPEND, CREATE, SELECT, SEARCH...) or a random number of bytes ends with
 * every message on the target exactly once (imapflow 2.10.2 fails those commands itself, and
 * pool.ts checks after each use; on 2.1.2 a CREATE after a BYE ended the run on a TypeError).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { passwordCredentials } from '../../src/auth/credentials.js';
import { STATE_FILE } from '../../src/commands/archive.js';
import type { MailferryError } from '../../src/domain/errors.js';
import { ImapSource } from '../../src/drivers/imap/source.js';
import { ImapAppendSink } from '../../src/drivers/imap/target.js';
import { MaildirSink } from '../../src/drivers/maildir/sink.js';
import { toLf } from '../../src/formats/fingerprint.js';
import { silentLogger } from '../../src/log/logger.js';
import { runPipeline } from '../../src/pipeline/run.js';
import type { RunReport } from '../../src/report.js';
import type { Sink } from '../../src/sinks/sink.js';
import type { Source } from '../../src/sources/source.js';
import { Checkpoint } from '../../src/state/checkpoint.js';
import { prng, randomBytes, smallMessages } from '../fixtures/nasty.js';
import { readMaildirFolder } from '../helpers/archive.js';
import { runCli } from '../helpers/cli.js';
import { faultProxy, TAGGED, type FaultOptions } from '../helpers/fault-proxy.js';
import { assertSameAccount } from '../helpers/compare.js';
import { fetchAll, withDovecot, type Account } from '../helpers/server.js';

/** Messages of 13-19 KB: over the stream threshold below, so they go through download(). */
function mediumMessages(n: number, seed: number): { raw: Buffer }[] {
  return Array.from({ length: n }, (_, i) => {
    const body = randomBytes(10_000 + ((i * 7919) % 4_000), seed + i).toString('base64').replace(/.{76}/g, '$&\r\n');
    return { raw: Buffer.from(`Subject: medium ${i}\r\nMessage-ID: <medium-${seed}-${i}@bye.test>\r\n\r\n${body}\r\n`) };
  });
}

/** 120 small messages with a medium one after every 6th: each batch has a UID FETCH and downloads. */
const medium = mediumMessages(20, 42);
const inbox = smallMessages(120, 41).flatMap((m, i) => {
  const extra = i % 6 === 3 ? medium[Math.floor(i / 6)] : undefined;
  return extra === undefined ? [m] : [m, extra];
});
const work = smallMessages(15, 43);
const FOLDERS = { INBOX: '', Work: '.Work' } as const;
/** Empty target accounts, one per migrate run (and the first for a run without BYE, to measure). */
const TARGET_RUNS = 12;
const targets: Account[] = Array.from({ length: TARGET_RUNS + 1 }, (_, i) => ({ name: `bye-target-${i}`, password: `bye-target-pw-${i}` }));
const dc = withDovecot({ seed: [{ path: 'INBOX', messages: inbox }, { path: 'Work', messages: work }], users: targets });
const STREAM_THRESHOLD = 12_000;
const DELAYS = [0, 2, 20, 200];
/** Dovecot's completion of a UID FETCH (a batch, a metadata listing, or one download chunk). */
const FETCH_DONE = /^\S+ OK Fetch completed/;


interface Outcome {
  report?: RunReport;
  error?: MailferryError;
  /** Archived bodies (LF) per folder. */
  archived: Record<keyof typeof FOLDERS, Buffer[]>;
}

/** alice's account on `port` (Dovecot's plain IMAP port, or a proxy in front of it). */
function imapSource(port: number): ImapSource {
  return new ImapSource({
    credentials: passwordCredentials(dc.alice.password),
    insecure: false,
    streamThreshold: STREAM_THRESHOLD,
    log: silentLogger,
    debug: false,
    endpoint: { kind: 'imap', user: 'alice', host: '127.0.0.1', port, tls: 'plain' },
    connections: 2,
  });
}

/** The pipeline in process, retries 10 ms apart; closes both ends. */
async function run(source: Source, sink: Sink): Promise<{ report?: RunReport; error?: MailferryError }> {
  try {
    return {
      report: await runPipeline(source, [sink], {
        include: [],
        exclude: [],
        batchBytes: 48 << 10,
        batchMessages: 40,
        retries: 5,
        retryBaseMs: 10,
        signal: new AbortController().signal,
        log: silentLogger,
      }),
    };
  } catch (e: unknown) {
    return { error: e as MailferryError };
  } finally {
    await source.close();
    await sink.close();
  }
}

/** One backup through a fault proxy, into a fresh Maildir. */
async function backupThrough(opts: FaultOptions): Promise<Outcome & { fired: boolean; bytes: number; tagged: number; matched: number }> {
  const proxy = await faultProxy(dc.server.imapPort, opts);
  const root = await mkdtemp(path.join(tmpdir(), 'mf-bye-'));
  const identity = `imap://alice@127.0.0.1:${dc.server.imapPort}`;
  const source = imapSource(proxy.port);
  const sink = new MaildirSink(root, 'maildir++', await Checkpoint.load(path.join(root, STATE_FILE), identity), silentLogger);
  const out: Outcome = { archived: { INBOX: [], Work: [] } };
  try {
    Object.assign(out, await run(source, sink));
  } finally {
    await proxy.close();
  }
  for (const [folder, dir] of Object.entries(FOLDERS) as [keyof typeof FOLDERS, string][]) {
    out.archived[folder] = (await readMaildirFolder(path.join(root, dir))).map((m) => m.body);
  }
  await rm(root, { recursive: true, force: true });
  return { ...out, fired: proxy.fired, bytes: proxy.bytes, tagged: proxy.tagged, matched: proxy.matched };
}

/** Every message the server holds in each folder is in the archive, byte for byte (and nothing else). */
async function missing(archived: Outcome['archived']): Promise<string[]> {
  const gaps: string[] = [];
  for (const folder of Object.keys(FOLDERS) as (keyof typeof FOLDERS)[]) {
    const want = (await fetchAll(dc.server, dc.alice, folder)).map((m) => toLf(m.raw));
    const got = [...archived[folder]];
    for (const w of want) {
      const i = got.findIndex((g) => g.equals(w));
      if (i === -1) gaps.push(folder);
      else got.splice(i, 1);
    }
    if (got.length > 0) gaps.push(`${folder}: ${got.length} messages not on the server`);
  }
  return gaps;
}

const exitOf = (o: { report?: RunReport; error?: MailferryError }): number => o.error?.exitCode ?? o.report?.exitCode ?? -1;

describe('a server BYE is a lost connection (fault proxy in front of Dovecot)', { skip: dc.skip }, () => {
  test('BYE at 32 seeded random points, closed 0/2/20/200 ms later: never exit 0 short of a message; the retry finishes every run', { timeout: 120_000 }, async () => {
    const full = await backupThrough({ afterLine: FETCH_DONE, nth: Infinity, delayMs: 0 });
    const fetches = full.matched;
    assert.equal(full.fired, false);
    assert.equal(exitOf(full), 0, full.error?.message);
    assert.deepEqual(await missing(full.archived), []);
    const rand = prng(14);
    const below = (n: number): number => Math.floor(((rand() as number) / 2 ** 32) * n);
    const failures: string[] = [];
    for (let run = 0; run < 32; run++) {
      const delayMs = DELAYS[run % DELAYS.length] as number;
      const trigger: FaultOptions =
        run % 2 === 0
          ? { afterBytes: below(full.bytes), delayMs }
          : run % 4 === 1
            ? { afterLine: TAGGED, nth: 1 + below(full.tagged), delayMs }
            : { afterLine: FETCH_DONE, nth: 1 + below(fetches), delayMs };
      const o = await backupThrough(trigger);
      const gaps = await missing(o.archived);
      const at =
        trigger.afterBytes !== undefined
          ? `${trigger.afterBytes} of ${full.bytes} bytes`
          : `${trigger.afterLine === TAGGED ? 'command completion' : 'UID FETCH completion'} ${String(trigger.nth)} of ${trigger.afterLine === TAGGED ? full.tagged : fetches}`;
      const where = `run ${run}: BYE after ${at}, close ${delayMs} ms later`;
      assert.ok(o.fired, `${where}: no BYE sent`);
      // The contract: exit 0 only with every message.
      if (exitOf(o) === 0 && gaps.length > 0) failures.push(`${where}: exit 0 with ${gaps.length} messages missing (${gaps.slice(0, 3).join(', ')})`);
      // And the BYE is only a lost connection: reconnected and finished in the same run.
      else if (exitOf(o) !== 0 || gaps.length > 0) failures.push(`${where}: exit ${exitOf(o)} (${o.error?.message ?? ''}), ${gaps.length} missing`);
    }
    assert.deepEqual(failures, []);
  });

  test(`migrate into a target that sends BYE (${TARGET_RUNS} seeded runs): exit 0, every message on the target exactly once`, { timeout: 120_000 }, async () => {
    /** A migrate into `target` through a fault proxy; what the target holds is then compared with alice's. */
    const migrateThrough = async (target: Account, trigger: FaultOptions): Promise<{ exit: number; error?: string; fired: boolean; bytes: number; tagged: number }> => {
      const proxy = await faultProxy(dc.server.imapPort, trigger);
      const state = await mkdtemp(path.join(tmpdir(), 'mf-bye-target-'));
      const sink = new ImapAppendSink({
        endpoint: { kind: 'imap', user: target.name, host: '127.0.0.1', port: proxy.port, tls: 'plain' },
        credentials: passwordCredentials(target.password),
        insecure: false,
        connections: 2,
        checkpoint: await Checkpoint.load(path.join(state, 'state.json'), `imap://alice@127.0.0.1:${dc.server.imapPort}`),
        log: silentLogger,
        debug: false,
      });
      const o = await run(imapSource(dc.server.imapPort), sink);
      await proxy.close();
      await rm(state, { recursive: true, force: true });
      const exit = exitOf(o);
      const error = exit !== 0 ? (o.error?.message ?? '') : await assertSameAccount(dc.server, dc.alice, target, Object.keys(FOLDERS)).then(() => undefined, (e: unknown) => String(e));
      return { exit, ...(error === undefined ? {} : { error }), fired: proxy.fired, bytes: proxy.bytes, tagged: proxy.tagged };
    };
    const [first, ...rest] = targets;
    const full = await migrateThrough(first as Account, { delayMs: 0 });
    assert.equal(full.error, undefined);
    const rand = prng(15);
    const below = (n: number): number => Math.floor(((rand() as number) / 2 ** 32) * n);
    const failures: string[] = [];
    let fired = 0;
    for (const [i, target] of rest.entries()) {
      const delayMs = DELAYS[i % DELAYS.length] as number;
      const trigger: FaultOptions = i % 2 === 0 ? { afterLine: TAGGED, nth: 1 + below(full.tagged), delayMs } : { afterBytes: below(full.bytes), delayMs };
      const o = await migrateThrough(target, trigger);
      if (o.fired) fired++;
      const at = trigger.afterBytes !== undefined ? `${trigger.afterBytes} of ${full.bytes} bytes` : `command completion ${String(trigger.nth)} of ${full.tagged}`;
      if (o.error !== undefined) failures.push(`run ${i} (${target.name}): BYE after ${at}, close ${delayMs} ms later: exit ${o.exit}: ${o.error}`);
    }
    assert.deepEqual(failures, []);
    assert.ok(fired >= TARGET_RUNS - 1, `a BYE was sent in ${fired} of ${TARGET_RUNS} runs`);
  });

  test('the CLI: a BYE between two fetch batches ends with every message and exit 0, the BYE text in the log', { timeout: 90_000 }, async () => {
    // Dovecot answers every UID FETCH with "OK Fetch completed"; the third one is the end of a
    // body batch of INBOX (after the metadata FETCH and a first batch), with batches of 50 KB.
    const proxy = await faultProxy(dc.server.imapPort, { afterLine: FETCH_DONE, nth: 3, delayMs: 200 });
    const root = await mkdtemp(path.join(tmpdir(), 'mf-bye-cli-'));
    try {
      const r = await runCli(
        ['backup', '--from', `imap://alice@127.0.0.1:${proxy.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `maildir:${root}`,
          '--connections', '1', '--batch-mb', '0.05', '--debug'],
        { PW: dc.alice.password, XDG_STATE_HOME: path.join(root, 'state') },
        { timeoutMs: 80_000 },
      );
      const ours = r.stderr.split('\n').filter((l) => !l.startsWith('imap {')).join('\n');
      const show = `exit ${String(r.status)}\nstdout: ${r.stdout}\nstderr (without imapflow's lines): ${ours}`;
      assert.ok(proxy.fired, `no BYE sent: ${show}`);
      assert.equal(r.status, 0, show);
      const archived = { INBOX: (await readMaildirFolder(root)).map((m) => m.body), Work: (await readMaildirFolder(path.join(root, '.Work'))).map((m) => m.body) };
      assert.deepEqual(await missing(archived), [], show);
      assert.match(r.stderr, /the server ended the session: BYE shutting down/, show);
    } finally {
      await proxy.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
