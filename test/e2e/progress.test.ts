import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SeedMessage } from '../../scripts/dev/seed.js';
import { runCli } from '../helpers/cli.js';
import { linkProxy } from '../helpers/cut-proxy.js';
import { replay, runInPty, type Shot } from '../helpers/pty.js';
import { withDovecot, type Account } from '../helpers/server.js';
import { startSmtp } from '../helpers/smtp.js';

/**
 * The progress line as a user at an 80-column terminal sees it (issue 19, item 4), read off a
 * modelled screen replayed from what the CLI wrote to a pseudo-terminal, moment by moment: Dovecot
 * serves a 50 MB message in INBOX and a 20 MB one in the last folder, fetched at 10 MiB/s
 * (`--max-bytes-per-second`) over one connection, so the 50 MB one streams for about 5 s while
 * the folders after it wait to be planned.
 */
function big(mb: number, tag: string): SeedMessage {
  const head = `From: a@example.org\r\nTo: b@example.org\r\nSubject: ${tag}\r\nMessage-ID: <${tag}@example.org>\r\n\r\n`;
  const line = `${'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/0123456789AB'}\r\n`;
  return { raw: Buffer.from(head + line.repeat(Math.ceil((mb * 1e6) / line.length)), 'latin1') };
}
const small = (n: number, tag: string): SeedMessage[] =>
  Array.from({ length: n }, (_v, i) => ({ raw: Buffer.from(`From: a@example.org\r\nSubject: ${tag} ${i}\r\nMessage-ID: <${tag}-${i}@example.org>\r\n\r\nbody ${i}\r\n`) }));
const inbox = big(50, 'fifty');
const zeta = big(20, 'twenty');
const target: Account = { name: 'progress-target', password: 'progress-target-pw' };
const dc = withDovecot({
  users: [target],
  seed: [
    { path: 'INBOX', messages: [inbox] },
    { path: 'Alpha', messages: small(3, 'alpha') },
    { path: 'Beta', messages: small(2, 'beta') },
    { path: 'Zeta', messages: [zeta] },
  ],
});

/** The progress row of a moment: the screen's last non-empty row, before the summary is printed. */
const rowOf = (s: Shot): string => s.rows.filter((r) => r !== '').at(-1) ?? '';
const mbOf = (row: string): number => Number(/ ([\d.]+)\/[\d.]+\+? MB/.exec(row)?.[1] ?? NaN);

interface JsonProgress {
  type: string;
  event?: string;
  mailbox?: string;
  streaming?: number;
  bytes?: number;
  folders?: number;
  plannedFolders?: number;
}

/**
 * A --json run's lines: the bytes events of `mailbox` come before its batch, grow, are throttled,
 * and never count more than the message's size (a message is counted once); the summary's bytes
 * are the message's size, as before bytes events existed.
 */
function checkBytesEvents(stdout: string, ms: number, mailbox: string, size: number): void {
  const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as JsonProgress);
  assert.deepEqual([lines[0]?.event, lines[0]?.plannedFolders], ['planning', 0], 'the first event (listing is for the terminal only)');
  const batch = lines.findIndex((l) => l.event === 'batch' && l.mailbox === mailbox);
  const bytes = lines.slice(0, batch).filter((l) => l.event === 'bytes' && l.mailbox === mailbox).map((l) => l.streaming as number);
  assert.ok(bytes.length >= 3, `bytes events before the message is committed: ${bytes.join(' ')}`);
  for (let i = 1; i < bytes.length; i++) assert.ok((bytes[i] as number) > (bytes[i - 1] as number), `growing: ${bytes.join(' ')}`);
  assert.ok(Math.max(...bytes) <= size, `never more than the message: ${Math.max(...bytes)} of ${size}`);
  const all = lines.filter((l) => l.event === 'bytes').length;
  assert.ok(all <= (ms / 1000) * 4 + 2, `${all} bytes events in ${ms} ms: at most 4 a second`);
  assert.equal(lines[batch]?.streaming, 0, 'committed: nothing left streaming');
  const summary = lines.at(-1);
  assert.equal(summary?.type, 'summary');
  assert.equal(summary?.bytes, size, "the summary's bytes: the message once");
}

const etaOf = (row: string): number | undefined => {
  const m = / ETA (\d+(?:\.\d+)?) (s|min|h)$/.exec(row);
  return m === null ? undefined : Number(m[1]) * (m[2] === 's' ? 1 : m[2] === 'min' ? 60 : 3600);
};

describe('the progress line at 80 columns', { skip: dc.skip }, () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-progress-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  const backup = (to: string, extra: string[] = []): string[] => [
    'backup', '--from', `imaps://alice@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'PW',
    '--to', to, '--connections', '1', '--max-bytes-per-second', '10M', ...extra,
  ];
  const env = (state: string): Record<string, string> => ({ PW: dc.alice.password, XDG_STATE_HOME: join(root, state) });

  test('bytes move inside a 50 MB message; listing and planning are shown, with no ETA; then an ETA close to the real time left', async () => {
    const run = await runInPty(backup(`maildir:${join(root, 'tty')}`), env('tty'), { timeoutMs: 120_000 });
    const shots = replay(run);
    const text = shots.at(-1)?.rows.join('\n') ?? '';
    assert.equal(run.status, 0, text);
    const end = shots.find((s) => s.rows.some((r) => /^\d+ folders, \d+ messages copied/.test(r)))?.ms;
    assert.ok(end !== undefined, `a summary at the end: ${text}`);
    const progress = shots.filter((s) => s.ms < end).map((s) => ({ ms: s.ms, row: rowOf(s) }));
    assert.ok(progress.every((p) => p.row.length < 80), 'every line fits in 80 columns');
    // What was shown, as "ms row" lines, for the failure messages.
    const timeline = `${progress.map((p) => `${p.ms} ${p.row}`).join('\n')}\n${end} (summary)`;
    assert.equal(progress[0]?.row, 'listing folders…', 'the first thing shown');

    // While the 50 MB message streams (INBOX 0/1), the MB shown grow, several times a second.
    const streaming = progress.filter((p) => p.row.startsWith('INBOX 0/1 '));
    const mbs = streaming.map((p) => mbOf(p.row));
    assert.ok(new Set(mbs).size >= 6, `MB shown while the message streams:\n${timeline}`);
    for (let i = 1; i < mbs.length; i++) assert.ok((mbs[i] as number) >= (mbs[i - 1] as number), `never backwards: ${mbs.join(' ')}`);
    assert.ok(Math.max(...mbs) > 40, `close to 50 MB before the message is committed: ${Math.max(...mbs)}`);
    const rates = streaming.map((p) => Number(/ ([\d.]+) MB\/s/.exec(p.row)?.[1]));
    assert.ok(rates.every((r) => r > 0), `a rate while the message streams:\n${timeline}`);
    assert.ok((rates.at(-1) as number) < 16, `the rate over the window, near the 10 MiB/s asked (its first second's burst fading):\n${timeline}`);

    // Folders still to plan: said so, and no ETA.
    const planning = progress.filter((p) => p.row.includes('planning '));
    assert.ok(planning.length >= 5, `the folders after INBOX wait to be planned while it streams:\n${timeline}`);
    assert.ok(planning.every((p) => etaOf(p.row) === undefined), `no ETA while planning: ${planning.map((p) => p.row).join('\n')}`);
    assert.match(planning.find((p) => p.row.startsWith('INBOX'))?.row ?? '', /^INBOX 0\/1 · planning \d\/4 folders · \d+\/\d+\+ msgs, [\d.]+\/[\d.]+\+ MB, [\d.]+ MB\/s$/);

    // Every folder planned, the 20 MB message streaming: an ETA within a sane factor of the real time left.
    const timed = progress.filter((p) => p.row.includes('· all ') && etaOf(p.row) !== undefined);
    assert.ok(timed.length >= 2, `an ETA once every folder is planned:\n${timeline}`);
    for (const p of timed) {
      const eta = etaOf(p.row) as number;
      const left = (end - p.ms) / 1000;
      assert.ok(eta <= left * 3 + 1 && eta >= left / 3 - 1, `ETA ${eta} s with ${left.toFixed(1)} s left:\n${timeline}`);
    }
  });

  test('--json bytes events, throttled, from IMAP and POP3 into every sink: mbox, IMAP target, SMTP (maildir above)', async () => {
    const zetaOnly = ['--json', '--include', 'Zeta'];
    const mbox = await runCli(backup(`mbox:${join(root, 'mbox')}`, zetaOnly), env('json-mbox'));
    assert.equal(mbox.status, 0, mbox.stderr);
    checkBytesEvents(mbox.stdout, mbox.ms, 'Zeta', zeta.raw.length);

    const pop3 = await runCli(
      ['backup', '--json', '--from', `pop3s://alice@127.0.0.1:${dc.server.pop3sPort}`, '--ca', dc.server.caFile, '--password-env', 'PW', '--to', `maildir:${join(root, 'pop3')}`, '--max-bytes-per-second', '25M'],
      env('json-pop3'),
    );
    assert.equal(pop3.status, 0, pop3.stderr);
    checkBytesEvents(pop3.stdout, pop3.ms, 'INBOX', inbox.raw.length);

    const migrate = await runCli(
      [...backup(`imap://${target.name}@127.0.0.1:${dc.server.imapPort}`, zetaOnly).map((a) => (a === 'backup' ? 'migrate' : a)), '--target-ca', dc.server.caFile, '--target-password-env', 'TARGET_PW'],
      { ...env('json-migrate'), TARGET_PW: target.password },
    );
    assert.equal(migrate.status, 0, migrate.stderr);
    checkBytesEvents(migrate.stdout, migrate.ms, 'Zeta', zeta.raw.length);

    const relay = await startSmtp({ mode: 'tls' });
    try {
      const args = backup('', zetaOnly).filter((a, i, all) => a !== '--to' && all[i - 1] !== '--to');
      const forward = await runCli(
        [...args.map((a) => (a === 'backup' ? 'forward' : a)), '--smtp', `smtps://127.0.0.1:${relay.port}`, '--smtp-ca', relay.caFile, '--rcpt', 'me@example.org'],
        env('json-forward'),
      );
      assert.equal(forward.status, 0, forward.stderr);
      checkBytesEvents(forward.stdout, forward.ms, 'Zeta', zeta.raw.length);
      assert.equal(relay.received.length, 1);
    } finally {
      await relay.stop();
    }
  });

  test('a message fetched again after a cut is counted once: its first bytes leave the count with the failed attempt', async () => {
    // POP3 cannot resume a RETR: the cut fails the stream, and the batch is fetched again whole.
    // The link is paced (20 MB/s) so that the first attempt is seen streaming before its cut.
    const link = await linkProxy(dc.server.pop3sPort, { cutAfter: 15_000_000, times: 1, bytesPerSecond: 20_000_000 });
    try {
      const r = await runCli(
        ['backup', '--json', '--from', `pop3s://alice@127.0.0.1:${link.port}`, '--ca', dc.server.caFile, '--password-env', 'PW', '--to', `maildir:${join(root, 'pop3-cut')}`],
        env('json-pop3-cut'),
      );
      assert.equal(r.status, 0, r.stderr);
      assert.equal(link.cuts, 1);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as JsonProgress);
      const streaming = lines.filter((l) => l.event === 'bytes').map((l) => l.streaming as number);
      const drop = streaming.findIndex((v, i) => i > 0 && v < (streaming[i - 1] as number));
      assert.ok(drop > 0, `the count drops back when the attempt fails: ${streaming.join(' ')}`);
      assert.ok(Math.max(...streaming) <= inbox.raw.length, `never more than the message once: ${Math.max(...streaming)} of ${inbox.raw.length}`);
      assert.ok(Math.max(...streaming.slice(drop)) > inbox.raw.length * 0.8, 'the second attempt streams it all');
      assert.equal(lines.at(-1)?.bytes, inbox.raw.length, "the summary's bytes: the message once");
    } finally {
      await link.close();
    }
  });

  test('--quiet at a terminal prints nothing; without a terminal, no progress line either (cron)', async () => {
    const quiet = await runInPty(backup(`maildir:${join(root, 'quiet')}`, ['--quiet', '--include', 'Zeta']), env('quiet'));
    assert.equal(quiet.status, 0);
    assert.deepEqual(quiet.chunks.map((c) => c.text).join(''), '');
    const cron = await runCli(backup(`maildir:${join(root, 'cron')}`, ['--include', 'Zeta']), env('cron'));
    assert.equal(cron.status, 0, cron.stderr);
    assert.equal(cron.stderr, '');
    assert.match(cron.stdout, /^[^\r\x1b]*\n$/, 'the summary line alone');
  });
});
