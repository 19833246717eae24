/**
 * The wrong scheme for a port, as a newcomer types it: imaps:// to the STARTTLS port, imap:// to
 * the TLS port (and the same for POP3 against Dovecot, SMTP against smtp-server). Each run stops
 * within a few seconds, exit 5, one line that says what the port speaks and which address to use,
 * instead of "certificate not trusted, pass --ca" or minutes of greeting time-outs.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import { withDovecot } from '../helpers/server.js';
import { startSmtp, type TestSmtp } from '../helpers/smtp.js';

const dc = withDovecot();
/** "within a second or two": generous for a loaded machine, far below one greeting time-out (30 s). */
const FAST_MS = 8_000;

function show(r: CliResult): string {
  return `exit ${String(r.status)} after ${r.ms} ms\n--- stderr\n${r.stderr}--- stdout\n${r.stdout}`;
}

function assertHint(r: CliResult, hint: RegExp): void {
  assert.equal(r.status, 5, show(r));
  assert.ok(r.ms < FAST_MS, `took ${r.ms} ms:\n${show(r)}`);
  assert.equal(r.stderr.trim().split('\n').length, 1, show(r));
  assert.match(r.stderr, hint, show(r));
  assert.doesNotMatch(r.stderr, /certificate|--ca/, show(r));
}

describe('a scheme that does not fit the port', { skip: dc.skip }, () => {
  let root = '';
  let relay: TestSmtp | undefined;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-scheme-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });
  afterEach(async () => {
    await relay?.stop();
    relay = undefined;
  });

  const backup = (from: string, name: string): Promise<CliResult> =>
    runCli(['backup', '--from', from, '--ca', dc.server.caFile, '--password-env', 'PW', '--to', `maildir:${join(root, name)}`],
      { PW: dc.alice.password, XDG_STATE_HOME: join(root, 'state') }, { timeoutMs: 120_000 });

  test('imaps:// to the STARTTLS port: "speaks plain IMAP with STARTTLS", use imap:// or port 993', async () => {
    const port = dc.server.imapPort;
    const r = await backup(`imaps://alice@127.0.0.1:${port}`, 'a');
    assertHint(r, new RegExp(`127\\.0\\.0\\.1:${port} speaks plain IMAP with STARTTLS, not TLS: use imap://alice@127\\.0\\.0\\.1:${port} \\(STARTTLS\\) or the TLS port \\(993\\)`));
  });

  test('imap:// to the TLS port: "speaks TLS", use imaps://', async () => {
    const port = dc.server.imapsPort;
    const r = await backup(`imap://alice@127.0.0.1:${port}`, 'b');
    assertHint(r, new RegExp(`127\\.0\\.0\\.1:${port} speaks TLS from the first byte: use imaps://alice@127\\.0\\.0\\.1:${port}`));
  });

  test('pop3s:// to the STLS port and pop3:// to the TLS port', async () => {
    const plain = dc.server.pop3Port;
    const a = await backup(`pop3s://alice@127.0.0.1:${plain}`, 'c');
    assertHint(a, new RegExp(`127\\.0\\.0\\.1:${plain} speaks plain POP3 with STLS, not TLS: use pop3://alice@127\\.0\\.0\\.1:${plain} \\(STLS\\) or the TLS port \\(995\\)`));
    const secure = dc.server.pop3sPort;
    const b = await backup(`pop3://alice@127.0.0.1:${secure}`, 'd');
    assertHint(b, new RegExp(`127\\.0\\.0\\.1:${secure} speaks TLS from the first byte: use pop3s://alice@127\\.0\\.0\\.1:${secure}`));
  });

  test('smtps:// to a STARTTLS relay and smtp:// to a TLS relay', async () => {
    const md = join(root, 'md');
    for (const d of ['cur', 'new', 'tmp']) await mkdir(join(md, d), { recursive: true });
    await writeFile(join(md, 'cur', '1.x.host:2,S'), 'From: a@example.org\nSubject: hi\nMessage-ID: <1@example.org>\n\nhello\n');
    const forward = (smtp: string, caFile: string, state: string): Promise<CliResult> =>
      runCli(['forward', '--from', `maildir:${md}`, '--smtp', smtp, '--smtp-ca', caFile, '--rcpt', 'x@example.org'],
        { XDG_STATE_HOME: join(root, state) }, { timeoutMs: 180_000 });
    relay = await startSmtp({ mode: 'starttls' });
    const a = await forward(`smtps://127.0.0.1:${relay.port}`, relay.caFile, 's1');
    assertHint(a, new RegExp(`127\\.0\\.0\\.1:${relay.port} speaks plain SMTP with STARTTLS, not TLS: use smtp://127\\.0\\.0\\.1:${relay.port} \\(STARTTLS\\) or the TLS port \\(465\\)`));
    assert.equal(relay.attempts, 0);
    await relay.stop();
    relay = await startSmtp({ mode: 'tls' });
    const b = await forward(`smtp://127.0.0.1:${relay.port}`, relay.caFile, 's2');
    assertHint(b, new RegExp(`127\\.0\\.0\\.1:${relay.port} speaks TLS from the first byte: use smtps://127\\.0\\.0\\.1:${relay.port}`));
    assert.equal(relay.attempts, 0);
  });
});
