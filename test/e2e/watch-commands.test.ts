/**
 * Watch mode beyond IMAP backup, against Dovecot: `backup --watch` of a POP3 maildrop polls every
 * --watch-interval (a message delivered is archived within the interval, once, and `--delete`
 * removes it from the server after it is durable); `forward --watch` from IMAP sends a message
 * delivered while it watches through the relay within seconds, once, and records it; `migrate
 * --watch` APPENDs a delivery to the target within seconds, once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, withDovecot, type Account } from '../helpers/server.js';
import { startSmtp } from '../helpers/smtp.js';
import { archivedIds, deliverTo, serverIds, startWatch, stopBetweenPasses } from '../helpers/watch.js';

const pia: Account = { name: 'watch-pia', password: 'watch-pia-pw' };
const fay: Account = { name: 'watch-fay', password: 'watch-fay-pw' };
const mo: Account = { name: 'watch-mo', password: 'watch-mo-pw' };
const tia: Account = { name: 'watch-tia', password: 'watch-tia-pw' };
const flo: Account = { name: 'watch-flo', password: 'watch-flo-pw' };
const gus: Account = { name: 'watch-gus', password: 'watch-gus-pw' };
const dc = withDovecot({ users: [pia, fay, mo, tia, flo, gus] });

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mf-watch-more-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function passwordFile(user: Account): Promise<string> {
  const pw = join(root, `pw-${user.name}`);
  await writeFile(pw, `${user.password}\n`, { mode: 0o600 });
  return pw;
}

describe('watch mode: POP3 and forward', { skip: dc.skip }, () => {
  test('backup --watch from POP3 polls every --watch-interval: each message archived once, then deleted (--delete)', { timeout: 60_000 }, async () => {
    const archive = join(root, 'pop3');
    const first = await deliverTo(dc.server, pia);
    const args = ['backup', '--from', `pop3://${pia.name}@127.0.0.1:${dc.server.pop3Port}`, '--tls-mode', 'plain', '--password-file', await passwordFile(pia)];
    const w = startWatch([...args, '--to', `maildir:${archive}`, '--delete', '--json', '--watch', '--watch-interval', '2s']);
    try {
      await w.until((e) => e['type'] === 'pass' && e['full'] === true && e['messages'] === 1);
      const ids = [first];
      for (let i = 0; i < 2; i++) {
        const from = w.events.length;
        ids.push(await deliverTo(dc.server, pia));
        const sent = Date.now();
        await w.until((e) => e['type'] === 'message', 10_000, from);
        assert.ok(Date.now() - sent < 4_500, `archived ${Date.now() - sent} ms after delivery (poll every 2 s)`);
      }
      await w.until((e) => e['type'] === 'pass', 5_000, w.events.length);
      assert.deepEqual(await archivedIds(archive), ids.sort(), 'each message once');
      assert.deepEqual(await serverIds(dc.server, pia, 'INBOX'), [], '--delete removed what is archived');
      const heartbeat = w.events.find((e) => e['type'] === 'heartbeat');
      assert.equal(heartbeat, undefined, 'no heartbeat before --watch-heartbeat (60 s)');
    } finally {
      // Polled every 2 s: right after a pass the watch sleeps, so the signal lands between passes.
      assert.equal((await stopBetweenPasses(w, 'pass')).status, 0, w.stderr());
    }
  });

  test('forward --watch from IMAP: a message delivered while it watches reaches the relay within seconds, once', { timeout: 60_000 }, async () => {
    const relay = await startSmtp({ mode: 'plain' });
    try {
      await deliverTo(dc.server, fay);
      const state = join(root, 'forward.json');
      const args = [
        'forward', '--from', `imap://${fay.name}@127.0.0.1:${dc.server.imapPort}`, '--tls-mode', 'plain', '--password-file', await passwordFile(fay),
        '--smtp', `smtp://127.0.0.1:${relay.port}`, '--smtp-tls-mode', 'plain', '--rcpt', 'me@new.example.org', '--state', state, '--json', '--watch', '--watch-heartbeat', '1s',
      ];
      const w = startWatch(args);
      try {
        await w.until((e) => e['type'] === 'pass' && e['full'] === true);
        assert.equal(relay.received.length, 1, 'the first pass forwarded the message that was there');
        const from = w.events.length;
        const id = await deliverTo(dc.server, fay);
        const sent = Date.now();
        await w.until((e) => e['type'] === 'message' && String(e['sink']).startsWith('smtp'), 10_000, from);
        assert.ok(Date.now() - sent < 5_000, `forwarded ${Date.now() - sent} ms after delivery`);
        assert.equal(relay.received.length, 2);
        assert.ok(relay.received[1]?.data.toString().includes(id), 'the new message');
      } finally {
        const end = await stopBetweenPasses(w);
        assert.equal(end.status, 0, w.stderr());
        const summary = w.events.at(-1);
        assert.equal(summary?.['forwarded'], 2, 'the summary counts each message forwarded once');
      }
    } finally {
      await relay.stop();
    }
  });

  test('migrate --watch: a message delivered to the source is APPENDed to the target within seconds, once', { timeout: 60_000 }, async () => {
    await deliverTo(dc.server, mo);
    await deliverTo(dc.server, mo, 'INBOX');
    const args = [
      'migrate', '--from', `imap://${mo.name}@127.0.0.1:${dc.server.imapPort}`, '--tls-mode', 'plain', '--password-file', await passwordFile(mo),
      '--to', `imap://${tia.name}@127.0.0.1:${dc.server.imapPort}`, '--target-tls-mode', 'plain', '--target-password-file', await passwordFile(tia),
      '--state', join(root, 'migrate.json'), '--json', '--watch', '--watch-heartbeat', '1s',
    ];
    const w = startWatch(args);
    try {
      await w.until((e) => e['type'] === 'pass' && e['full'] === true && e['messages'] === 2);
      for (let i = 0; i < 2; i++) {
        const from = w.events.length;
        await deliverTo(dc.server, mo);
        const sent = Date.now();
        await w.until((e) => e['type'] === 'message', 10_000, from);
        assert.ok(Date.now() - sent < 5_000, `APPENDed ${Date.now() - sent} ms after delivery`);
      }
      assert.deepEqual(await serverIds(dc.server, tia, 'INBOX'), await serverIds(dc.server, mo, 'INBOX'), 'the target holds each message once');
    } finally {
      assert.equal((await stopBetweenPasses(w)).status, 0, w.stderr());
    }
  });

  test('migrate --watch: a flag changed and a message expunged on the source reach the target within seconds (IDLE), not at the next full pass', { timeout: 60_000 }, async () => {
    const ids = [await deliverTo(dc.server, flo), await deliverTo(dc.server, flo)];
    const args = [
      'migrate', '--from', `imap://${flo.name}@127.0.0.1:${dc.server.imapPort}`, '--tls-mode', 'plain', '--password-file', await passwordFile(flo),
      '--to', `imap://${gus.name}@127.0.0.1:${dc.server.imapPort}`, '--target-tls-mode', 'plain', '--target-password-file', await passwordFile(gus),
      '--state', join(root, 'migrate-flags.json'), '--sync-deletions', '--json', '--watch', '--watch-heartbeat', '1s',
    ];
    const w = startWatch(args);
    /** Message-ID -> flags on the target. */
    const target = async (): Promise<Map<string, string[]>> => {
      const c = await connect(dc.server, gus);
      try {
        await c.mailboxOpen('INBOX', { readOnly: true });
        const out = new Map<string, string[]>();
        for await (const m of c.fetch('1:*', { envelope: true, flags: true })) out.set(m.envelope?.messageId ?? '', [...(m.flags ?? [])].sort());
        return out;
      } finally {
        await c.logout();
      }
    };
    const until = async (what: string, ok: (t: Map<string, string[]>) => boolean): Promise<number> => {
      const sent = Date.now();
      for (;;) {
        if (ok(await target())) return Date.now() - sent;
        if (Date.now() - sent > 10_000) throw new Error(`${what}: not on the target after 10 s (full pass every 15 min); ${JSON.stringify([...(await target())])}\n${w.stderr()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    try {
      await w.until((e) => e['type'] === 'pass' && e['full'] === true && e['messages'] === 2);
      await w.until((e) => e['type'] === 'heartbeat' && e['live'] === 1, 10_000);
      const c = await connect(dc.server, flo);
      try {
        await c.mailboxOpen('INBOX');
        await c.messageFlagsAdd({ header: { 'message-id': ids[0] ?? '' } }, ['\\Flagged', '$Work']);
        const flagged = await until('\\Flagged and $Work', (t) => (t.get(ids[0] ?? '') ?? []).includes('\\Flagged') && (t.get(ids[0] ?? '') ?? []).includes('$Work'));
        await c.messageDelete({ header: { 'message-id': ids[1] ?? '' } });
        const removed = await until('the expunge', (t) => !t.has(ids[1] ?? '') && t.size === 1);
        process.stderr.write(`watch flags: on the target ${flagged} ms after the STORE, the expunge ${removed} ms after\n`);
      } finally {
        await c.logout();
      }
      assert.equal(w.events.filter((e) => e['type'] === 'pass' && e['full'] === true).length, 1, 'no full pass meanwhile: IDLE brought the passes forward');
      const summary = w.events.filter((e) => e['type'] === 'message').length;
      assert.equal(summary, 2, 'nothing appended again');
    } finally {
      assert.equal((await stopBetweenPasses(w)).status, 0, w.stderr());
    }
  });
});
