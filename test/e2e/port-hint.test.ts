/**
 * A connection refused on a port that is not the scheme's usual one: the one-line error names the
 * usual port (drivers/scheme.ts usualPort, through each driver's error mapper), for IMAP, POP3 and
 * SMTP, at once (a refused port is not retried) and with exit 5.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('connection refused on an unusual port: the error says the scheme\'s usual port (IMAP, POP3, SMTP)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-porthint-'));
  try {
    const port = await closedPort();
    const env = { PW: 'not-a-secret-0', XDG_STATE_HOME: join(dir, 'state') };
    const archive = join(dir, 'archive');
    await Promise.all(['cur', 'new', 'tmp'].map((d) => mkdir(join(archive, d), { recursive: true })));
    await writeFile(join(archive, 'cur', '1.host:2,S'), 'From: a@example.org\nSubject: one\n\nbody\n');
    const cases: [string[], RegExp][] = [];
    for (const [scheme, usual] of [['imaps', 993], ['imap', 143], ['pop3s', 995], ['pop3', 110]] as const) {
      cases.push([
        ['backup', '--from', `${scheme}://me@127.0.0.1:${port}`, '--password-env', 'PW', '--to', `maildir:${join(dir, scheme)}`],
        new RegExp(`^mailferry: connection refused by 127\\.0\\.0\\.1:${port}; ${scheme}:// is usually port ${usual}\\n$`),
      ]);
    }
    for (const [scheme, usual, user] of [['smtps', 465, 'me@'], ['smtp', 587, '']] as const) {
      cases.push([
        [
          ...['forward', '--from', `maildir:${archive}`, '--smtp', `${scheme}://${user}127.0.0.1:${port}`],
          ...(user === '' ? [] : ['--smtp-password-env', 'PW']),
          ...['--rcpt', 'you@example.org', '--state', join(dir, `${scheme}.json`)],
        ],
        new RegExp(`^mailferry: connection refused by ${scheme}://127\\.0\\.0\\.1:${port}; ${scheme}:// is usually port ${usual}\\n$`),
      ]);
    }
    for (const [argv, expected] of cases) {
      const r = await runCli(argv, env);
      assert.equal(r.status, 5, `${argv.join(' ')}\n${r.stderr}`);
      assert.match(r.stderr, expected);
      assert.ok(r.ms < 15_000, `${argv[2] ?? ''}: not retried (${r.ms} ms)`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
