import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import { withTempDir } from '../helpers/tmpdir.js';
import { imapPeer } from '../helpers/imap-peer.js';
import { fakeServer, standard } from '../helpers/pop3-peer.js';

/**
 * Hostile servers and secrets (log/redact.ts): a server echoing the password (raw, or the SASL
 * PLAIN blob) never gets it into stdout (the --json summary's skipped[].reason), stderr (with
 * --debug), the --log-file or the state; a password holding `"` and `\` is masked in its
 * JSON-escaped form too; a folder name with a newline cannot forge a log line.
 */
const PW = 'pa"ss\\wo rd%+1';
const forms = [PW, JSON.stringify(PW).slice(1, -1), encodeURIComponent(PW), Buffer.from(`\0alice\0${PW}`).toString('base64')];
const messages = [1, 2, 3].map((i) => Buffer.from(`Subject: m${i}\r\nMessage-ID: <m${i}@mailferry.test>\r\n\r\nbody ${i}\r\n`));

function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  return withTempDir('mf-secrets-', fn);
}

async function everything(dir: string, r: CliResult): Promise<string> {
  let text = r.stdout + r.stderr;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) text += await readFile(join(e.parentPath, e.name), 'latin1');
  }
  return text;
}

function assertNoSecret(text: string): void {
  for (const f of forms) assert.equal(text.includes(f), false, `${JSON.stringify(f)} leaked`);
}

function backup(url: string, dir: string, extra: string[] = []): Promise<CliResult> {
  return runCli(
    ['backup', '--from', url, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `maildir:${join(dir, 'archive')}`, '--log-file', join(dir, 'log'), ...extra],
    { PW, XDG_STATE_HOME: join(dir, 'state') },
    { timeoutMs: 30_000 },
  );
}

describe('secrets never shown, log lines never forged', () => {
  test('a POP3 server echoing the password in a RETR refusal: --json --debug, exit 3, no secret anywhere', async () => {
    const fake = await fakeServer(
      standard({ messages }, (line, sock) => {
        if (line.startsWith('PASS ')) sock.write(line.slice(5) === PW ? '+OK Logged in.\r\n' : `-ERR [AUTH] wrong password ${line.slice(5)}\r\n`);
        else if (line === 'RETR 2') sock.write(`-ERR bad password ${PW}\r\n`);
        else return false;
        return true;
      }),
    );
    try {
      await withDir(async (dir) => {
        const r = await backup(`pop3://alice@127.0.0.1:${fake.port}`, dir, ['--json', '--debug']);
        assert.equal(r.status, 3, r.stderr);
        const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { skipped?: { reason: string }[] };
        assert.match(summary.skipped?.[0]?.reason ?? '', /bad password \*\*\*/);
        assertNoSecret(await everything(dir, r));
      });
    } finally {
      await fake.close();
    }
  });

  test('a POP3 server echoing the AUTH PLAIN blob: exit 4, the base64 form masked', async () => {
    const fake = await fakeServer(
      standard({ messages, capa: ['SASL PLAIN', 'UIDL'] }, (line, sock) => {
        const m = /^AUTH PLAIN (\S+)$/.exec(line);
        if (m === null) return false;
        sock.write(`-ERR [AUTH] credentials ${m[1] ?? ''} refused\r\n`);
        return true;
      }),
    );
    try {
      await withDir(async (dir) => {
        const r = await backup(`pop3://alice@127.0.0.1:${fake.port}`, dir, ['--debug']);
        assert.equal(r.status, 4, r.stderr);
        assert.match(r.stderr, /credentials \*\*\* refused/);
        assertNoSecret(await everything(dir, r));
      });
    } finally {
      await fake.close();
    }
  });

  test('a folder name with a newline forges no line on stderr or in the log file', async () => {
    const peer = await imapPeer({ messages, folders: ['x\nforged: line'] });
    try {
      await withDir(async (dir) => {
        const r = await backup(`imap://alice@127.0.0.1:${peer.port}`, dir);
        assert.equal(r.status, 3, r.stderr);
        const log = await readFile(join(dir, 'log'), 'utf8');
        assert.match(r.stderr + log, /x\\nforged: line/);
        for (const line of (r.stderr + log).split('\n')) assert.equal(line.startsWith('forged'), false, line);
      });
    } finally {
      await peer.close();
    }
  });
});
