import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { toLf } from '../../src/formats/fingerprint.js';
import { nastyMailbox, pop3View, smallMessages } from '../fixtures/nasty.js';
import { readMaildirFolder } from '../helpers/archive.js';
import { lastJson, runCli, type CliResult } from '../helpers/cli.js';
import { connect, fetchAll, withDovecot } from '../helpers/server.js';
import { smtpView, startSmtp, type SmtpOptions, type TestSmtp } from '../helpers/smtp.js';

/**
 * `mailferry forward` end to end: Dovecot (IMAP, POP3) as the source, smtp-server on loopback as
 * the relay, the CLI as a child process. What the relay received is compared with what the source
 * serves, byte for byte (after SMTP's own line-end rule, smtpView), with the envelope.
 */
const bulk = smallMessages(12, 7);
const dc = withDovecot({ nasty: true, seed: [{ path: 'Bulk', messages: bulk }] });
const nastyFolders = nastyMailbox().filter((f) => f.messages.length > 0);
const inbox = nastyMailbox().find((f) => f.path === 'INBOX')?.messages ?? [];
const RELAY_USER = 'me@new.example.org';
const RELAY_PW = 'relay-secret';
const caseOf = (b: Buffer): string => /X-Mailferry-Case: ([^\r\n]*)/.exec(b.toString('latin1'))?.[1] ?? '';

describe('forward through SMTP', { skip: dc.skip }, () => {
  let root = '';
  let relay: TestSmtp | undefined;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mf-forward-'));
  });
  after(async () => {
    if (root !== '') await rm(root, { recursive: true, force: true });
  });
  afterEach(async () => {
    await relay?.stop();
    relay = undefined;
  });

  async function start(opts: SmtpOptions): Promise<TestSmtp> {
    relay = await startSmtp(opts);
    return relay;
  }

  function imapFrom(): string[] {
    return ['--from', `imaps://alice@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'PW'];
  }

  function relayArgs(r: TestSmtp, scheme: 'smtps' | 'smtp', user: string | undefined): string[] {
    return ['--smtp', `${scheme}://${user === undefined ? '' : `${user}@`}127.0.0.1:${r.port}`, '--smtp-ca', r.caFile,
      ...(user === undefined ? [] : ['--smtp-password-env', 'SMTP_PW'])];
  }

  async function forward(args: string[], state: string, extra: Record<string, string> = {}): Promise<CliResult & { out: Record<string, unknown> }> {
    const r = await runCli(['forward', '--json', ...args], { PW: dc.alice.password, SMTP_PW: RELAY_PW, XDG_STATE_HOME: join(root, state), ...extra }, { timeoutMs: 180_000 });
    return { ...r, out: lastJson(r.stdout) };
  }

  test('IMAP -> smtps with AUTH: every message byte-exact, right envelope; rerun sends nothing; state 0600 without secrets', async () => {
    const r = await start({ mode: 'tls', auth: { user: RELAY_USER, pass: RELAY_PW } });
    const args = [...imapFrom(), ...relayArgs(r, 'smtps', RELAY_USER), '--rcpt', 'me@new.example.org', '--exclude', 'Bulk'];
    const first = await forward(args, 'st1');
    assert.equal(first.status, 0, first.stderr);
    const want = (await Promise.all(nastyFolders.map((f) => fetchAll(dc.server, dc.alice, f.path)))).flat().map((m) => smtpView(m.raw));
    assert.equal(first.out['forwarded'], want.length);
    assert.equal(r.received.length, want.length, 'one delivery per message');
    for (const w of want) assert.ok(r.received.some((g) => g.data.equals(w)), `${caseOf(w)} arrived byte-exact`);
    for (const g of r.received) {
      assert.equal(g.from, RELAY_USER, 'MAIL FROM defaults to the relay login');
      assert.deepEqual(g.to, ['me@new.example.org']);
      assert.equal(g.user, RELAY_USER, 'AUTH as the URL user');
    }

    const again = await forward(args, 'st1');
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.out['forwarded'], 0);
    assert.equal(r.received.length, want.length, 'a rerun sends nothing');

    const statePath = String(first.out['state']);
    assert.ok(statePath.startsWith(join(root, 'st1', 'mailferry', 'forward-')), statePath);
    assert.equal((await stat(statePath)).mode & 0o777, 0o600);
    const text = await readFile(statePath, 'utf8');
    assert.ok(!text.includes(RELAY_PW) && !text.includes(dc.alice.password), 'no secret in the state');
    assert.match(text, /Ok: queued as T\d+/, 'the relay reply is kept');
    assert.deepEqual((await readdir(join(root, 'st1', 'mailferry'))).filter((n) => n.endsWith('.lock')), [], 'lock released');
  });

  test('POP3 -> smtp:// STARTTLS without AUTH, null envelope sender, Maildir and mbox archives in the same pass; those archives as sources', async () => {
    const r = await start({ mode: 'starttls' });
    const args = ['--from', `pop3s://alice@127.0.0.1:${dc.server.pop3sPort}`, '--ca', dc.server.caFile, '--password-env', 'PW',
      ...relayArgs(r, 'smtp', undefined), '--rcpt', 'me@new.example.org', '--envelope-from', '<>',
      '--archive', `maildir:${join(root, 'pop-md')}`, '--archive', `mbox:${join(root, 'pop-mbox')}`];
    const first = await forward(args, 'st2');
    assert.equal(first.status, 0, first.stderr);
    assert.equal(r.received.length, inbox.length);
    for (const m of inbox) assert.ok(r.received.some((g) => g.data.equals(smtpView(pop3View(m.raw)))), `${caseOf(m.raw)} byte-exact`);
    assert.ok(r.received.every((g) => g.from === '' && g.user === undefined), 'MAIL FROM:<>, no AUTH');
    const archived = await readMaildirFolder(join(root, 'pop-md'));
    assert.equal(archived.length, inbox.length, 'archived in the same pass');
    for (const m of inbox) assert.ok(archived.some((a) => a.body.equals(toLf(pop3View(m.raw)))), `${caseOf(m.raw)} archived`);
    const again = await forward(args, 'st2');
    assert.equal(again.status, 0, again.stderr);
    assert.equal(r.received.length, inbox.length, 'a rerun sends nothing');

    // The archive as the source: the same bytes again (LF on disk, CRLF on the wire).
    await r.stop();
    const r2 = await start({ mode: 'tls' });
    const fromArchive = await forward(['--from', `maildir:${join(root, 'pop-md')}`, ...relayArgs(r2, 'smtps', undefined), '--rcpt', 'me@new.example.org'], 'st2');
    assert.equal(fromArchive.status, 0, fromArchive.stderr);
    assert.equal(r2.received.length, inbox.length);
    for (const m of inbox) assert.ok(r2.received.some((g) => g.data.equals(smtpView(pop3View(m.raw)))), `${caseOf(m.raw)} from the archive`);
    const fromMbox = await forward(['--from', `mbox:${join(root, 'pop-mbox')}`, ...relayArgs(r2, 'smtps', undefined), '--rcpt', 'me@new.example.org'], 'st2');
    assert.equal(fromMbox.status, 0, fromMbox.stderr);
    const mboxCopies = r2.received.slice(inbox.length);
    assert.equal(mboxCopies.length, inbox.length);
    for (const m of inbox) assert.ok(mboxCopies.some((g) => g.data.equals(smtpView(pop3View(m.raw)))), `${caseOf(m.raw)} from the mbox archive`);
  });

  test('--rate 5/s holds: sends spaced, never more than 5 in any second (measured at the relay)', async () => {
    const r = await start({ mode: 'tls' });
    const res = await forward([...imapFrom(), ...relayArgs(r, 'smtps', undefined), '--rcpt', 'x@example.org', '--include', 'Bulk', '--rate', '5/s'], 'st3');
    assert.equal(res.status, 0, res.stderr);
    const at = r.received.map((g) => g.at).sort((a, b) => a - b);
    assert.equal(at.length, bulk.length);
    const span = (at.at(-1) ?? 0) - (at[0] ?? 0);
    // 12 messages at 5/s: 11 intervals of 200 ms; allow for timer and network jitter.
    assert.ok(span >= 11 * 200 * 0.85, `span ${span} ms`);
    const most = Math.max(...at.map((t) => at.filter((u) => u >= t && u < t + 1000).length));
    assert.ok(most <= 6, `${most} messages within one second`);
  });

  test('451 then 250: the message is retried and delivered once', async () => {
    const r = await start({ mode: 'tls', onData: (n) => (n === 0 ? { code: 451, message: '4.3.0 try again later' } : undefined) });
    const res = await forward([...imapFrom(), ...relayArgs(r, 'smtps', undefined), '--rcpt', 'x@example.org', '--include', 'Bulk'], 'st4');
    assert.equal(res.status, 0, res.stderr);
    assert.equal(r.attempts, bulk.length + 1, 'one more DATA than messages');
    assert.equal(r.received.length, bulk.length);
    const ids = r.received.map((g) => /Message-ID: (<[^>]+>)/.exec(g.data.toString('latin1'))?.[1]);
    assert.equal(new Set(ids).size, bulk.length, 'each message once');
  });

  test('the relay drops the connection during a message: retried on a new connection, delivered once', async () => {
    const r = await start({ mode: 'tls', onData: (n) => (n === 2 ? 'drop' : undefined) });
    const res = await forward([...imapFrom(), ...relayArgs(r, 'smtps', undefined), '--rcpt', 'x@example.org', '--include', 'Bulk'], 'st13');
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stderr, /retrying/);
    assert.equal(r.attempts, bulk.length + 1);
    const ids = r.received.map((g) => /Message-ID: (<[^>]+>)/.exec(g.data.toString('latin1'))?.[1]);
    assert.equal(ids.length, bulk.length);
    assert.equal(new Set(ids).size, bulk.length, 'each message once');
  });

  test('552 for one message: skipped with the reason (exit 3), the others delivered; a rerun tries only it again', async () => {
    const big = (data: Buffer): boolean => data.toString('latin1').includes('Message-ID: <small-7-3@mailferry.test>');
    const r = await start({ mode: 'tls', onData: (_, data) => (big(data) ? { code: 552, message: '5.3.4 message too big' } : undefined) });
    const args = [...imapFrom(), ...relayArgs(r, 'smtps', undefined), '--rcpt', 'x@example.org', '--include', 'Bulk'];
    const res = await forward(args, 'st5');
    assert.equal(res.status, 3, res.stderr);
    assert.equal(r.received.length, bulk.length - 1);
    const skipped = res.out['skipped'] as { mailbox: string; id?: string; reason: string }[];
    assert.equal(skipped.length, 1);
    assert.equal(skipped[0]?.mailbox, 'Bulk');
    assert.match(skipped[0]?.reason ?? '', /552 5\.3\.4 message too big/);
    assert.match(res.stderr, /skipped Bulk message \d+: relay refused it: 552/);
    const before = r.attempts;
    const again = await forward(args, 'st5');
    assert.equal(again.status, 3, again.stderr);
    assert.equal(r.attempts, before + 1, 'only the refused message is tried again');
    assert.equal(r.received.length, bulk.length - 1);
  });

  test('AUTH refused (535): exit 4, one line, nothing sent; the password not even in --debug output', async () => {
    const r = await start({ mode: 'tls', auth: { user: RELAY_USER, pass: 'other' } });
    const res = await forward([...imapFrom(), ...relayArgs(r, 'smtps', RELAY_USER), '--rcpt', 'x@example.org', '--include', 'Bulk', '--debug'], 'st6');
    assert.equal(res.status, 4, res.stderr);
    assert.match(res.stderr, /^mailferry: smtps:\/\/127\.0\.0\.1:\d+: login refused: 535/m);
    assert.match(res.stderr, /AUTH PLAIN/, '--debug logs the protocol');
    const plain = Buffer.from(`\0${RELAY_USER}\0${RELAY_PW}`).toString('base64');
    for (const secret of [RELAY_PW, plain, Buffer.from(RELAY_PW).toString('base64')]) {
      assert.ok(!res.stderr.includes(secret) && !res.stdout.includes(secret), 'the password, plain or base64, never shown');
    }
    assert.equal(r.attempts, 0);
  });

  test('SMTP AUTH with an OAuth2 access token (XOAUTH2) from --smtp-oauth2-token-command', async () => {
    const r = await start({ mode: 'tls', auth: { user: RELAY_USER, accessToken: 'relay-token-42' } });
    const args = [...imapFrom(), '--smtp', `smtps://${RELAY_USER}@127.0.0.1:${r.port}`, '--smtp-ca', r.caFile,
      '--smtp-oauth2-token-command', 'echo relay-token-42', '--rcpt', 'x@example.org', '--include', 'Bulk'];
    const res = await forward(args, 'st14');
    assert.equal(res.status, 0, res.stderr);
    assert.equal(r.received.length, bulk.length);
    assert.ok(r.received.every((g) => g.user === RELAY_USER));
  });

  test('an OAuth2 token that expires mid-run: the relay refuses the old one on reconnect, a fresh one is fetched, every message delivered once', async () => {
    const tokenFile = join(root, 'relay-token');
    await writeFile(tokenFile, 'relay-token-old\n');
    const auth = { user: RELAY_USER, accessToken: 'relay-token-old' };
    // Message 5: the token "expires" (the relay takes only the new one from now on) and the
    // connection drops, so the next login (nodemailer's pool reconnecting) offers the old token.
    const r = await start({
      mode: 'tls',
      auth,
      onData: (n) => {
        if (n !== 5) return undefined;
        auth.accessToken = 'relay-token-new';
        void writeFile(tokenFile, 'relay-token-new\n');
        return 'drop';
      },
    });
    const args = [...imapFrom(), '--smtp', `smtps://${RELAY_USER}@127.0.0.1:${r.port}`, '--smtp-ca', r.caFile,
      '--smtp-oauth2-token-command', `cat ${tokenFile}`, '--rcpt', 'x@example.org', '--include', 'Bulk'];
    const res = await forward(args, 'st-renew');
    assert.equal(res.status, 0, res.stderr);
    assert.equal(res.out['forwarded'], bulk.length);
    const subjects = r.received.map((g) => /^Subject: (.*)$/m.exec(g.data.toString('latin1'))?.[1]);
    assert.equal(new Set(subjects).size, bulk.length, 'every message once');
    assert.equal(r.received.length, bulk.length);
    assert.ok(r.received.slice(5).length > 0, 'messages after the expiry were delivered');
    assert.ok(!(res.stdout + res.stderr).includes('relay-token-'), 'no token in the output');
  });

  test('smtp:// to a relay without STARTTLS: refused (exit 5) unless --smtp-tls-mode plain', async () => {
    const r = await start({ mode: 'plain', auth: { user: RELAY_USER, pass: RELAY_PW } });
    const args = [...imapFrom(), ...relayArgs(r, 'smtp', RELAY_USER), '--rcpt', 'x@example.org', '--include', 'Bulk'];
    const refused = await forward(args, 'st7');
    assert.equal(refused.status, 5, refused.stderr);
    assert.match(refused.stderr, /STARTTLS/);
    assert.equal(r.attempts, 0, 'no AUTH, nothing sent in clear');
    const plain = await forward([...args, '--smtp-tls-mode', 'plain'], 'st7');
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(r.received.length, bulk.length);
  });

  test('a folder recreated with a new UIDVALIDITY: matched by the recorded fingerprints, nothing sent again', async () => {
    const r = await start({ mode: 'tls' });
    const msgs = smallMessages(3, 99);
    const fill = async (): Promise<void> => {
      const c = await connect(dc.server, dc.alice);
      try {
        if ((await c.list()).some((l) => l.path === 'Renew')) await c.mailboxDelete('Renew');
        await c.mailboxCreate('Renew');
        for (const m of msgs) await c.append('Renew', m.raw, [], m.date);
      } finally {
        await c.logout();
      }
    };
    await fill();
    const args = [...imapFrom(), ...relayArgs(r, 'smtps', undefined), '--rcpt', 'x@example.org', '--include', 'Renew'];
    const first = await forward(args, 'st10');
    assert.equal(first.status, 0, first.stderr);
    assert.equal(r.received.length, 3);
    await fill();
    const again = await forward(args, 'st10');
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /UIDVALIDITY changed/);
    assert.equal(r.received.length, 3, 'nothing forwarded twice');
  });

  test('--unseen-only forwards the unseen messages only; a run without it then forwards the rest, nothing twice', async () => {
    const r = await start({ mode: 'tls' });
    const args = [...imapFrom(), ...relayArgs(r, 'smtps', undefined), '--rcpt', 'x@example.org', '--include', 'Bulk'];
    const unseen = bulk.filter((m) => !(m.flags ?? []).includes('\\Seen'));
    assert.ok(unseen.length > 0 && unseen.length < bulk.length, 'the fixture has both');
    const first = await forward([...args, '--unseen-only'], 'st11');
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.out['filtered'], bulk.length - unseen.length);
    const ids = (rs: typeof r.received): string[] => rs.map((g) => /Message-ID: (<[^>]+>)/.exec(g.data.toString('latin1'))?.[1] ?? '').sort();
    const idOfSeed = (m: { raw: Buffer }): string => /Message-ID: (<[^>]+>)/.exec(m.raw.toString('latin1'))?.[1] ?? '';
    assert.deepEqual(ids(r.received), unseen.map(idOfSeed).sort());
    const rest = await forward(args, 'st11');
    assert.equal(rest.status, 0, rest.stderr);
    assert.deepEqual(ids(r.received), bulk.map(idOfSeed).sort(), 'each message once');
  });

  test('--dry-run: what would be forwarded, from the state alone; nothing sent, nothing written', async () => {
    const r = await start({ mode: 'tls' });
    const args = [...imapFrom(), ...relayArgs(r, 'smtps', undefined), '--rcpt', 'x@example.org', '--include', 'Bulk'];
    const planned = (out: Record<string, unknown>): number => (out['folders'] as { messages: number }[]).reduce((n, f) => n + f.messages, 0);
    const dry = await forward([...args, '--dry-run', '--archive', `maildir:${join(root, 'dry-md')}`], 'st12');
    assert.equal(dry.status, 0, dry.stderr);
    assert.equal(dry.out['type'], 'plan');
    assert.equal(planned(dry.out), bulk.length);
    assert.equal(r.attempts, 0, 'the relay was not contacted');
    await assert.rejects(stat(join(root, 'st12')), 'no state written');
    await assert.rejects(stat(join(root, 'dry-md')), 'no archive created');
    const real = await forward(args, 'st12');
    assert.equal(real.status, 0, real.stderr);
    const after = await forward([...args, '--dry-run'], 'st12');
    assert.equal(planned(after.out), 0, 'nothing left to forward');
    assert.equal(r.received.length, bulk.length);
  });

  test('--mark-sent records what is there without sending it or asking for the relay password; later runs forward only newer mail', async () => {
    const r = await start({ mode: 'tls', auth: { user: RELAY_USER, pass: RELAY_PW } });
    const old = smallMessages(3, 41);
    const newer = smallMessages(2, 42);
    const append = async (msgs: typeof old): Promise<void> => {
      const c = await connect(dc.server, dc.alice);
      try {
        if (!(await c.list()).some((l) => l.path === 'Marked')) await c.mailboxCreate('Marked');
        for (const m of msgs) await c.append('Marked', m.raw, [], m.date);
      } finally {
        await c.logout();
      }
    };
    await append(old);
    const base = [...imapFrom(), '--smtp', `smtps://${RELAY_USER}@127.0.0.1:${r.port}`, '--smtp-ca', r.caFile, '--rcpt', 'me@new.example.org', '--include', 'Marked'];
    // The relay password source points at a variable that is not set: reading it would be exit 2.
    const marked = await forward([...base, '--smtp-password-env', 'MF_UNSET_RELAY_PW', '--mark-sent'], 'st13');
    assert.equal(marked.status, 0, marked.stderr);
    assert.equal(marked.out['markedSent'], old.length);
    assert.equal(marked.out['forwarded'], undefined, 'nothing counted as forwarded');
    assert.equal(r.attempts, 0, 'the relay was not contacted');

    await append(newer);
    const args = [...base, '--smtp-password-env', 'SMTP_PW'];
    const next = await forward(args, 'st13');
    assert.equal(next.status, 0, next.stderr);
    assert.equal(next.out['forwarded'], newer.length);
    const idOf = (b: Buffer): string => /Message-ID: (<[^>]+>)/.exec(b.toString('latin1'))?.[1] ?? '';
    assert.deepEqual(r.received.map((g) => idOf(g.data)).sort(), newer.map((m) => idOf(m.raw)).sort(), 'only the newer mail went out');
    const again = await forward(args, 'st13');
    assert.equal(again.out['forwarded'], 0);
    assert.equal(r.received.length, newer.length);

    const both = await forward([...args, '--mark-sent', '--dry-run'], 'st13');
    assert.equal(both.status, 2, both.stderr);
    assert.match(both.stderr, /--mark-sent and --dry-run/);
  });

  test('a second run on the same state exits 7 (lock)', async () => {
    const r = await start({ mode: 'tls' });
    const state = join(root, 'locked.json');
    await writeFile(`${state}.lock`, `${process.pid} ${hostname()} ${new Date().toISOString()}\n`);
    const res = await forward([...imapFrom(), ...relayArgs(r, 'smtps', undefined), '--rcpt', 'x@example.org', '--state', state], 'st9');
    assert.equal(res.status, 7, res.stderr);
    assert.equal(r.attempts, 0);
  });

  test('configuration problems are reported together before any I/O (exit 2)', async () => {
    const res = await forward(['--from', 'pop3s://alice@127.0.0.1:1', '--password-env', 'PW', '--smtp', 'smtps://127.0.0.1:1', '--smtp-password-env', 'SMTP_PW', '--rate', 'fast', '--unseen-only'], 'st8');
    assert.equal(res.status, 2, res.stderr);
    assert.match(res.stderr, /--unseen-only is for IMAP sources only/);
    assert.match(res.stderr, /--rcpt ADDRESS is required/);
    assert.match(res.stderr, /needs a user in the --smtp address/);
    assert.match(res.stderr, /--rate must be/);
  });
});
