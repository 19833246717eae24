/**
 * `mailferry folders`: every folder with its messages, size and special-use role, and what a
 * backup would skip and why (the profile's duplicates, --exclude), as text and as --json.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { smallMessages } from '../fixtures/nasty.js';
import { lastJson, runCli } from '../helpers/cli.js';
import { withDovecot } from '../helpers/server.js';

const seed = [
  { path: 'INBOX', messages: smallMessages(5, 51) },
  { path: 'Work', messages: smallMessages(3, 52) },
  { path: 'Archiv/2023', messages: smallMessages(2, 53) },
  { path: 'Dupes', messages: smallMessages(1, 54) },
  { path: 'Sent', messages: smallMessages(2, 55) },
];
const dc = withDovecot({ seed, dovecot: { specialUse: { Sent: '\\Sent' } } });
const bytes = (path: string): number => seed.find((f) => f.path === path)?.messages.reduce((n, m) => n + m.raw.length, 0) ?? -1;

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mailferry-folders-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Line {
  path: string;
  container?: boolean;
  messages?: number;
  bytes?: number;
  specialUse?: string;
  skipped?: string;
}

describe('mailferry folders', { skip: dc.skip }, () => {
  test('counts, sizes, roles, and what the profile and --exclude skip; text and --json', async () => {
    const profile = join(root, 'p.json');
    await writeFile(
      profile,
      JSON.stringify({
        name: 'test-dovecot',
        description: 'the throwaway Dovecot of this test',
        domains: [],
        imap: { host: '127.0.0.1', port: dc.server.imapsPort, tls: 'tls' },
        folders: { roles: {}, skip: ['Dupes'] },
        limits: {},
        auth: { methods: ['password'] },
      }),
    );
    const args = ['folders', '--from', `imaps://${dc.alice.name}@127.0.0.1:${dc.server.imapsPort}`, '--ca', dc.server.caFile, '--password-env', 'PW', '--profile', profile, '--exclude', 'Work'];
    const j = await runCli([...args, '--json'], { PW: dc.alice.password });
    assert.equal(j.status, 0, j.stderr);
    const out = lastJson(j.stdout);
    assert.equal(out['type'], 'folders');
    const by = new Map((out['folders'] as Line[]).map((f) => [f.path, f]));
    for (const f of seed) {
      const line = by.get(f.path);
      assert.deepEqual([line?.messages, line?.bytes], [f.messages.length, bytes(f.path)], f.path);
    }
    assert.equal(by.get('Sent')?.specialUse, '\\Sent');
    assert.match(by.get('Dupes')?.skipped ?? '', /the test-dovecot profile skips it.*--all-folders/);
    assert.match(by.get('Work')?.skipped ?? '', /--include\/--exclude/);
    assert.equal(by.get('INBOX')?.skipped, undefined);
    assert.equal(by.get('Archiv')?.container ?? false, by.get('Archiv')?.messages === undefined, 'Archiv: a container or a folder with figures');

    const t = await runCli(args, { PW: dc.alice.password });
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /^imaps:\/\/alice@127\.0\.0\.1:\d+: \d+ folders, 13 messages, /);
    assert.match(t.stdout, /^INBOX +5 messages +\d+\.\d\d MB {2}\\Inbox\n/m);
    assert.match(t.stdout, /^Sent +2 messages +\d+\.\d\d MB {2}\\Sent\n/m);
    assert.match(t.stdout, /^Dupes +1 messages .* skipped: the test-dovecot profile skips it/m);

    const all = lastJson((await runCli([...args, '--json', '--all-folders'], { PW: dc.alice.password })).stdout);
    assert.equal((all['folders'] as Line[]).find((f) => f.path === 'Dupes')?.skipped, undefined, '--all-folders: the profile skips nothing');

    // A source without status() (POP3): the figures come from the listing's sizes.
    const pop = await runCli(['folders', '--json', '--from', `pop3s://${dc.alice.name}@127.0.0.1:${dc.server.pop3sPort}`, '--ca', dc.server.caFile, '--password-env', 'PW'], { PW: dc.alice.password });
    assert.equal(pop.status, 0, pop.stderr);
    const inbox = (lastJson(pop.stdout)['folders'] as Line[]).find((f) => f.path === 'INBOX');
    assert.deepEqual([inbox?.messages, inbox?.bytes], [5, bytes('INBOX')]);
  });
});
