/**
 * Why watch mode keeps one IDLE session per folder instead of NOTIFY (RFC 5465), shown on the
 * Dovecot the tests use (docs/notify.md): it announces NOTIFY and reports new mail in other
 * folders as untagged STATUS, but a non-ASCII folder named in `mailboxes` is never reported,
 * under `personal` it is named in raw UTF-8 (not modified UTF-7, RFC 3501 5.1.3), and a flag
 * change outside the selected folder is not reported at all. When a Dovecot upgrade makes this
 * test fail, look again at NOTIFY (docs/notify.md).
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { encodeUtf7 } from '../../src/formats/utf7.js';
import { connect, withDovecot, type Account } from '../helpers/server.js';

const nia: Account = { name: 'notify-nia', password: 'notify-nia-pw' };
const dc = withDovecot({ users: [nia] });
const ODD = 'Ünï';

/** A raw IMAP session (no library: NOTIFY and the STATUS it brings are what is looked at). */
async function session(): Promise<{ send(line: string): Promise<void>; text(): string; end(): void }> {
  const s = net.connect(dc.server.imapPort, '127.0.0.1');
  let got = '';
  s.setEncoding('utf8').on('data', (d: string) => {
    got += d;
  });
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));
  await new Promise<void>((r) => s.once('connect', () => r()));
  await settle();
  return {
    send: async (line) => {
      s.write(`${line}\r\n`);
      await settle();
    },
    text: () => got,
    end: () => s.destroy(),
  };
}

/** New mail in Work and in the non-ASCII folder, then \Flagged set in Work, by another client. */
async function changes(): Promise<void> {
  const c = await connect(dc.server, nia);
  try {
    for (const f of ['Work', ODD]) await c.append(f, Buffer.from(`Subject: to ${f}\r\n\r\nbody\r\n`));
    await c.mailboxOpen('Work');
    await c.messageFlagsAdd('1:*', ['\\Flagged']);
  } finally {
    await c.logout();
  }
  await new Promise((r) => setTimeout(r, 800));
}

describe('NOTIFY on the tests\' Dovecot: why watch mode keeps IDLE', { skip: dc.skip }, () => {
  before(async () => {
    const c = await connect(dc.server, nia);
    try {
      for (const f of ['Work', ODD]) await c.mailboxCreate(f);
    } finally {
      await c.logout();
    }
  });

  test('announced; new mail elsewhere said as STATUS; a non-ASCII folder and flag changes elsewhere not said', { timeout: 30_000 }, async () => {
    const s = await session();
    try {
      await s.send(`a1 LOGIN ${nia.name} ${nia.password}`);
      assert.match(s.text(), /a1 OK \[CAPABILITY [^\]]*\bNOTIFY\b/, 'NOTIFY announced after login');
      await s.send('a2 EXAMINE INBOX');
      await s.send(`a3 NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) (mailboxes (Work "${encodeUtf7(ODD)}") (MessageNew MessageExpunge FlagChange))`);
      assert.match(s.text(), /a3 OK/);
      await s.send('a4 IDLE');
      const from = s.text().length;
      await changes();
      const said = s.text().slice(from);
      assert.match(said, /\* STATUS Work \(MESSAGES 1 /, 'new mail in Work: said');
      assert.doesNotMatch(said, /\* STATUS ("?&ANwA7w-"?|\{5\})/, `the non-ASCII folder is said now: NOTIFY may do (docs/notify.md)\n${said}`);
      assert.equal((said.match(/\* STATUS Work/g) ?? []).length, 1, `the flag change in Work is said now (docs/notify.md)\n${said}`);
    } finally {
      s.end();
    }
  });

  test('under `personal` the non-ASCII folder is said, named in raw UTF-8 rather than modified UTF-7', { timeout: 30_000 }, async () => {
    const s = await session();
    try {
      await s.send(`b1 LOGIN ${nia.name} ${nia.password}`);
      await s.send('b2 EXAMINE INBOX');
      await s.send('b3 NOTIFY SET (selected (MessageNew MessageExpunge)) (personal (MessageNew MessageExpunge))');
      await s.send('b4 IDLE');
      const from = s.text().length;
      await changes();
      const said = s.text().slice(from);
      assert.ok(said.includes(`* STATUS {${Buffer.byteLength(ODD)}}\r\n${ODD} (`), `named in UTF-8 in a literal: ${JSON.stringify(said)}`);
      assert.ok(!said.includes(encodeUtf7(ODD)), 'not in modified UTF-7');
    } finally {
      s.end();
    }
  });
});
