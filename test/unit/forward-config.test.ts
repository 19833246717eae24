import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadForwardConfig } from '../../src/config/forward.js';
import { MailferryError } from '../../src/domain/errors.js';
import { describeEndpoint, parseSmtpEndpoint } from '../../src/endpoints/url.js';
import { RunReport } from '../../src/report.js';
import { parseRate, rateLimited } from '../../src/drivers/smtp/rate.js';
import type { SmtpSender } from '../../src/drivers/smtp/transport.js';

test('SMTP addresses: TLS on 465, STARTTLS on 587, the user optional, never a password', () => {
  assert.deepEqual(parseSmtpEndpoint('smtps://smtp.example.org'), { kind: 'smtp', user: '', host: 'smtp.example.org', port: 465, tls: 'tls' });
  assert.deepEqual(parseSmtpEndpoint('smtp://me@example.org@smtp.example.org'), { kind: 'smtp', user: 'me@example.org', host: 'smtp.example.org', port: 587, tls: 'starttls' });
  assert.equal(parseSmtpEndpoint('smtp://relay:25').port, 25);
  assert.equal(describeEndpoint(parseSmtpEndpoint('smtps://relay')), 'smtps://relay:465');
  assert.equal(describeEndpoint(parseSmtpEndpoint('smtps://u@relay')), 'smtps://u@relay:465');
  assert.throws(() => parseSmtpEndpoint('smtps://me:secret@relay'), (e: unknown) => e instanceof MailferryError && !e.message.includes('secret'));
  assert.throws(() => parseSmtpEndpoint('imaps://me@relay'), MailferryError);
});

test('--rate: N/s, N/m, N/h', () => {
  assert.deepEqual(parseRate('10/s'), { count: 10, perMs: 1000, text: '10/s' });
  assert.equal(parseRate('5/m').perMs, 60_000);
  assert.equal(parseRate('100/h').perMs, 3_600_000);
  for (const bad of ['10', '0/s', '5/d', 'x/s', '-1/m']) assert.throws(() => parseRate(bad), MailferryError, bad);
});

test('rateLimited spaces sends evenly, concurrent callers included', async () => {
  const at: number[] = [];
  const inner: SmtpSender = { send: () => Promise.resolve((at.push(Date.now()), { accepted: true, text: '250 ok' })), close: () => undefined };
  const s = rateLimited(inner, parseRate('20/s'), new AbortController().signal);
  const t0 = Date.now();
  await Promise.all(Array.from({ length: 6 }, () => s.send({ from: '', to: 'x@y' }, Buffer.alloc(0))));
  assert.equal(at.length, 6);
  // 5 intervals of 50 ms; timers fire late, never early.
  assert.ok((at.at(-1) ?? 0) - t0 >= 5 * 50 - 5, `${(at.at(-1) ?? 0) - t0} ms`);
  // Each at least 50 ms after the one before (Date.now() is whole milliseconds).
  for (let i = 1; i < at.length; i++) assert.ok((at[i] ?? 0) - (at[i - 1] ?? 0) >= 49, `gap ${i}: ${(at[i] ?? 0) - (at[i - 1] ?? 0)} ms`);
});

const base = { from: 'pop3s://me@pop.example.org', passwordEnv: 'PW', smtp: 'smtps://me@new.example.org@smtp.example.org', smtpPasswordEnv: 'SPW', rcpt: 'me@new.example.org' };

test('forward config: envelope sender defaults to the relay login when it is an address, else --rcpt; <> is null', () => {
  assert.equal(loadForwardConfig(base).envelopeFrom, 'me@new.example.org');
  assert.deepEqual(loadForwardConfig(base).smtp.auth, { kind: 'password', secret: { env: 'SPW' } });
  const noAddress = loadForwardConfig({ ...base, smtp: 'smtps://login@smtp.example.org', rcpt: 'x@example.net' });
  assert.equal(noAddress.envelopeFrom, 'x@example.net');
  const noAuth = loadForwardConfig({ from: base.from, passwordEnv: 'PW', smtp: 'smtp://relay', rcpt: 'x@example.net' });
  assert.equal(noAuth.smtp.auth, undefined);
  assert.equal(noAuth.envelopeFrom, 'x@example.net');
  assert.equal(loadForwardConfig({ ...base, envelopeFrom: '<>' }).envelopeFrom, '');
  assert.equal(loadForwardConfig({ ...base, envelopeFrom: 'bounce@example.org' }).envelopeFrom, 'bounce@example.org');
  const local = loadForwardConfig({ from: 'maildir:/tmp/x', smtp: base.smtp, smtpPasswordEnv: 'SPW', rcpt: base.rcpt }).source;
  assert.ok('path' in local && local.kind === 'maildir' && local.path === '/tmp/x', 'an archive needs no password');
});

test('forward config: every problem at once', () => {
  assert.throws(
    () => loadForwardConfig({ from: 'pop3s://me@pop', smtp: 'smtps://relay', smtpPasswordEnv: 'X', rcpt: 'not an address', rate: '3', envelopeFrom: 'a b' }),
    (e: unknown) =>
      e instanceof MailferryError &&
      e.kind === 'usage' &&
      ['a password source is required', 'needs a user in the --smtp address', '--rcpt must be a plain address', '--rate must be', '--envelope-from must be'].every((p) => e.message.includes(p)),
  );
  assert.throws(() => loadForwardConfig({ from: base.from, passwordEnv: 'PW', rcpt: base.rcpt }), /--smtp is required/);
  assert.throws(
    () => loadForwardConfig({ from: 'maildir:/tmp/x', smtp: 'smtps://relay', rcpt: base.rcpt, user: 'me@gmail.com', markSent: true, dryRun: true }),
    (e: unknown) =>
      e instanceof MailferryError && e.message.includes('are for mail accounts, not archives') && e.message.includes('--mark-sent and --dry-run'),
  );
});

test('forward config: --user takes the server, the connection cap, the skipped folders and the daily budget from the profile', () => {
  const cfg = loadForwardConfig({ user: 'me@gmail.com', passwordEnv: 'PW', connections: 30, smtp: 'smtps://relay', rcpt: base.rcpt });
  assert.ok('endpoint' in cfg.source);
  assert.equal(cfg.source.endpoint.host, 'imap.gmail.com');
  assert.ok(cfg.source.connections < 30, `capped: ${cfg.source.connections}`);
  assert.ok(cfg.exclude.some((p) => p.includes('Starred')), cfg.exclude.join(' '));
  assert.equal(cfg.limits.budgets[0]?.kind, 'download');
  const local = loadForwardConfig({ from: 'maildir:/tmp/x', smtp: 'smtps://relay', rcpt: base.rcpt });
  assert.deepEqual(local.limits.budgets, []);
});

test('the run summary tells marked messages from forwarded ones', () => {
  const marked = new RunReport();
  marked.markedSent = 3;
  assert.match(marked.summary(), /, 3 marked as sent \(not sent\),/);
  assert.doesNotMatch(marked.summary(), /forwarded/);
  assert.equal(marked.toJSON()['markedSent'], 3);
  const sent = new RunReport();
  sent.forwarded = 2;
  assert.match(sent.summary(), /, 2 forwarded,/);
  assert.equal(sent.toJSON()['markedSent'], undefined);
});
