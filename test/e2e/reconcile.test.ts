import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import { imapPeer, type ImapPeerOptions } from '../helpers/imap-peer.js';
import { fakeServer, standard, type Mailbox } from '../helpers/pop3-peer.js';

/**
 * Asked for N, got fewer: every such case ends with a non-zero exit naming the message, or with
 * the message archived; never exit 0 with a message missing. Scripted peers on loopback play the
 * servers that leave a message out (test/helpers/imap-peer.ts, pop3-peer.ts).
 */
const messages = [1, 2, 3].map((i) => Buffer.from(`Subject: m${i}\r\nMessage-ID: <m${i}@mailferry.test>\r\n\r\nbody ${i}\r\n`));

async function archived(dir: string): Promise<number> {
  return (await readdir(join(dir, 'new')).catch(() => [])).length + (await readdir(join(dir, 'cur')).catch(() => [])).length;
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'mf-reconcile-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function backup(url: string, dir: string, extra: string[] = []): Promise<CliResult> {
  return runCli(['backup', '--from', url, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `maildir:${dir}`, ...extra], { PW: 'pw' }, { timeoutMs: 90_000 });
}

async function imapRun(opts: Omit<ImapPeerOptions, 'messages'>, fn: (run: (dir: string) => Promise<CliResult>) => Promise<void>): Promise<void> {
  const peer = await imapPeer({ messages, ...opts });
  try {
    await fn((dir) => backup(`imap://alice@127.0.0.1:${peer.port}`, dir));
  } finally {
    await peer.close();
  }
}

async function pop3Run(box: Mailbox, extra: string[], fn: (run: (dir: string) => Promise<CliResult>) => Promise<void>): Promise<void> {
  const fake = await fakeServer(standard({ messages, ...box }));
  try {
    await fn((dir) => backup(`pop3://alice@127.0.0.1:${fake.port}`, dir, extra));
  } finally {
    await fake.close();
  }
}

describe('reconciled: what was asked for arrived, or the run says which message did not', { concurrency: true }, () => {
  test('the scripted IMAP peer without a fault: exit 0, every message', async () => {
    await imapRun({}, async (run) =>
      withDir(async (dir) => {
        const r = await run(dir);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(await archived(dir), 3);
      }),
    );
  });

  test('IMAP: a UID left out of the UID FETCH reply: exit 3 naming it, the others archived; a rerun is not "already archived"', async () => {
    await imapRun({ leaveOut: { body: [2] } }, async (run) =>
      withDir(async (dir) => {
        const r = await run(dir);
        assert.equal(r.status, 3, r.stderr);
        assert.match(r.stderr, /skipped INBOX message 2: the source did not send it/);
        assert.equal(await archived(dir), 2);
        const again = await run(dir);
        assert.equal(again.status, 3, again.stderr);
        assert.match(again.stdout, /2 already archived/);
        assert.match(again.stderr, /skipped INBOX message 2/);
      }),
    );
  });

  test('IMAP: a UID left out of the metadata FETCH (list): exit 3 naming it, never "already archived"', async () => {
    await imapRun({ leaveOut: { meta: [2] } }, async (run) =>
      withDir(async (dir) => {
        const r = await run(dir);
        assert.equal(r.status, 3, r.stderr);
        assert.match(r.stderr, /skipped INBOX message 2: left out of every listing/);
        assert.match(r.stdout, /2 messages copied .*0 already archived/);
        assert.equal(await archived(dir), 2);
      }),
    );
  });

  test('IMAP: a UID expunged between listing and fetch: exit 0, counted as vanished', async () => {
    await imapRun({ leaveOut: { body: [2] }, expungeLeftOut: true }, async (run) =>
      withDir(async (dir) => {
        const r = await run(dir);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /2 messages copied .*1 vanished from the source meanwhile/);
        assert.equal(await archived(dir), 2);
      }),
    );
  });

  test('POP3: RETR answered -ERR: exit 3 naming the message with the server\'s words', async () => {
    await pop3Run({ refuse: { retr: [2] } }, [], async (run) =>
      withDir(async (dir) => {
        const r = await run(dir);
        assert.equal(r.status, 3, r.stderr);
        assert.match(r.stderr, /skipped INBOX message u2: the server refused RETR: cannot read that message now/);
        assert.equal(await archived(dir), 2);
      }),
    );
  });

  test('POP3: one UIDL for two messages: exit 3 naming the second', async () => {
    await pop3Run({ uidls: ['u1', 'u1', 'u3'] }, [], async (run) =>
      withDir(async (dir) => {
        const r = await run(dir);
        assert.equal(r.status, 3, r.stderr);
        assert.match(r.stderr, /skipped INBOX message u1: messages 1 and 2 share the UIDL u1 .*message 2 not copied/);
        assert.equal(await archived(dir), 2);
      }),
    );
  });

  test('POP3 --no-uidl: TOP refused for one message: exit 3 naming it', async () => {
    await pop3Run({ capa: ['USER', 'TOP'], uidl: false, refuse: { top: [2] } }, ['--no-uidl'], async (run) =>
      withDir(async (dir) => {
        const r = await run(dir);
        assert.equal(r.status, 3, r.stderr);
        assert.match(r.stderr, /the server refused TOP for message 2/);
        assert.equal(await archived(dir), 2);
      }),
    );
  });
});
