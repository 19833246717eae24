import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import { fakeServer, standard } from '../helpers/pop3-peer.js';

/**
 * The archive directory is ours (state/no-follow.ts): a symbolic link planted in it (an mbox
 * file, a Maildir cur/, the state file, the lock) is an error naming it, exit 6, and nothing
 * outside the archive changes: every outside file is hashed before and after.
 */
const messages = [1, 2].map((i) => Buffer.from(`Subject: m${i}\r\nMessage-ID: <m${i}@mailferry.test>\r\n\r\nbody ${i}\r\n`));

async function hashTree(dir: string): Promise<string> {
  const h = createHash('sha256');
  for (const e of (await readdir(dir, { withFileTypes: true, recursive: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    h.update(`${e.parentPath}/${e.name}\0`);
    if (e.isFile()) h.update(await readFile(join(e.parentPath, e.name)));
  }
  return h.digest('hex');
}

/** A root with an archive directory and an `outside` directory beside it holding a victim file. */
async function withPlanted(plant: (archive: string, outside: string) => Promise<string>, to: (archive: string) => string): Promise<{ r: CliResult; link: string; before: string; after: string }> {
  const base = await mkdtemp(join(tmpdir(), 'mf-symlinks-'));
  const fake = await fakeServer(standard({ messages }));
  try {
    const archive = join(base, 'archive');
    const outside = join(base, 'outside');
    await mkdir(archive, { recursive: true });
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'victim'), 'precious\n');
    const link = await plant(archive, outside);
    const before = await hashTree(outside);
    const r = await runCli(
      ['backup', '--from', `pop3://alice@127.0.0.1:${fake.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', to(archive)],
      { PW: 'pw', XDG_STATE_HOME: join(base, 'state') },
      { timeoutMs: 30_000 },
    );
    return { r, link, before, after: await hashTree(outside) };
  } finally {
    await fake.close();
    await rm(base, { recursive: true, force: true });
  }
}

function assertRefused(res: { r: CliResult; link: string; before: string; after: string }): void {
  assert.equal(res.r.status, 6, res.r.stderr);
  assert.ok(res.r.stderr.includes(res.link), `names ${res.link}: ${res.r.stderr}`);
  assert.match(res.r.stderr, /symbolic link/);
  assert.equal(res.after, res.before, 'nothing outside the archive changed');
}

/** Each case plants one link (returns its path) in an archive of the given format. */
const cases: { name: string; format: 'mbox' | 'maildir'; plant: (archive: string, outside: string) => Promise<string> }[] = [
  { name: 'an mbox INBOX linked to an outside file', format: 'mbox', plant: (a, o) => link(join(o, 'victim'), join(a, 'INBOX')) },
  {
    name: 'a Maildir cur/ linked to an outside directory',
    format: 'maildir',
    plant: async (a, o) => {
      await mkdir(join(a, 'tmp'));
      await mkdir(join(a, 'new'));
      return link(o, join(a, 'cur'));
    },
  },
  { name: 'the state file linked to an outside file', format: 'maildir', plant: (a, o) => link(join(o, 'victim'), join(a, '.mailferry-state.json')) },
  { name: 'the lock file linked to an outside file', format: 'maildir', plant: (a, o) => link(join(o, 'victim'), join(a, '.mailferry.lock')) },
];

async function link(target: string, at: string): Promise<string> {
  await symlink(target, at);
  return at;
}

describe('symbolic links in the archive are never followed', () => {
  for (const c of cases) {
    test(c.name, async () => {
      assertRefused(await withPlanted(c.plant, (a) => `${c.format}:${a}`));
    });
  }
});
