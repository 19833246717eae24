import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runCliJson, type JsonResult } from '../helpers/cli.js';
import { gmailMailbox, gmailPeer, type GmailMessage, type GmailPeer } from '../helpers/gmail-peer.js';
import { labelView } from '../helpers/gmail-view.js';

/**
 * migrate from Gmail into Gmail (both the stand-in, test/helpers/gmail-peer.ts) keeps the target's
 * labels in step on every rerun (drivers/imap/target-labels.ts syncLabels): a label added or
 * removed on the source is stored on the target's one copy with STORE +/-X-GM-LABELS, with no
 * download and no second APPEND; a run killed between its APPEND and its STORE is repaired.
 * A Gmail-mode mbox archive records a label change in its state (drivers/mbox/gmail-archive.ts):
 * restore gives the new labels, and the file stays one Python's mailbox reads.
 */
const run = promisify(execFile);
interface Pair {
  source: GmailPeer;
  target: GmailPeer;
  box: GmailMessage[];
  root: string;
  migrate(opts?: { onSpawn?: (child: ChildProcess) => void }): Promise<JsonResult>;
  close(): Promise<void>;
}

async function pair(): Promise<Pair> {
  const box = gmailMailbox();
  const source = await gmailPeer({ messages: box });
  const target = await gmailPeer({ messages: [] });
  const root = await mkdtemp(join(tmpdir(), 'mf-gmail-relabel-'));
  const args = [
    'migrate', '--json',
    '--from', `imap://alice@127.0.0.1:${source.port}`, '--tls-mode', 'plain', '--password-env', 'PW',
    '--to', `imap://bob@127.0.0.1:${target.port}`, '--target-tls-mode', 'plain', '--target-password-env', 'PW',
  ];
  const env = { PW: 'pw', XDG_STATE_HOME: join(root, 'state') };
  return {
    source, target, box, root,
    migrate: (opts = {}) => runCliJson(args, env, opts),
    close: async () => {
      await source.close();
      await target.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** What the target should hold: every source message once, Spam and Trash without labels. */
const wanted = (box: readonly GmailMessage[]): ReturnType<typeof labelView> => labelView(box.map((m) => (m.bin === undefined ? m : { ...m, labels: [] })));

describe('migrate Gmail into Gmail: labels follow on rerun', () => {
  test('a label added or removed on the source since the copy is stored on the target; nothing fetched or appended again', async () => {
    const p = await pair();
    try {
      const r = await p.migrate();
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(labelView(p.target.messages), wanted(p.box));
      const bodies = p.source.bodies;
      p.source.setLabels(0, ['Work']); // archived -> labelled
      p.source.setLabels(1, []); // archived
      p.source.setLabels(3, ['\\Sent', 'Rechnungen bezahlt', 'Reisen/Köln 2024']); // one removed, one added
      p.source.setLabels(4, ['\\Inbox', '\\Important', 'Work']); // two removed, one added
      const again = await p.migrate();
      assert.equal(again.status, 0, again.stderr);
      assert.equal(again.out['messages'], 0);
      assert.equal(p.source.bodies, bodies, 'no body fetched again');
      assert.equal(p.target.messages.length, p.box.length, 'nothing appended twice');
      assert.deepEqual(labelView(p.target.messages), wanted(p.box), 'the target\'s labels are the source\'s');
      const third = await p.migrate();
      assert.equal(third.status, 0, third.stderr);
      assert.deepEqual(labelView(p.target.messages), wanted(p.box));
    } finally {
      await p.close();
    }
  });

  test('a label change the target refuses is an error, not a record: the run is not 0, and the next one stores it', async () => {
    const p = await pair();
    try {
      assert.equal((await p.migrate()).status, 0);
      p.source.setLabels(0, ['Work']);
      p.target.refuseStores = true;
      const refused = await p.migrate();
      assert.notEqual(refused.status, 0, `a refused STORE ended ${String(refused.status)}: ${refused.stderr}`);
      assert.match(refused.stderr, /refused to store labels/);
      p.target.refuseStores = false;
      const again = await p.migrate();
      assert.equal(again.status, 0, again.stderr);
      assert.deepEqual(labelView(p.target.messages), wanted(p.box), 'the refused change is stored by the next run');
    } finally {
      await p.close();
    }
  });

  test('kill -9 between APPEND and STORE: the rerun labels the messages already appended, each still once', async () => {
    const p = await pair();
    try {
      p.target.holdStores = true;
      let child: ChildProcess | undefined;
      const killed = p.migrate({ onSpawn: (c) => (child = c) });
      while (p.target.heldStores === 0) await new Promise((res) => setTimeout(res, 5));
      child?.kill('SIGKILL');
      const k = await killed;
      assert.equal(k.status, null, 'killed');
      const appended = p.target.messages.filter((m) => m.bin === undefined);
      assert.ok(appended.length > 0 && appended.every((m) => m.labels.length === 0), 'appended to All Mail, not yet labelled');
      p.target.holdStores = false;
      const bodies = p.source.bodies;
      const r = await p.migrate();
      assert.equal(r.status, 0, r.stderr);
      assert.equal(p.target.messages.length, p.box.length, 'each message once');
      assert.deepEqual(labelView(p.target.messages), wanted(p.box), 'with exactly its labels');
      assert.ok(p.source.bodies - bodies <= p.box.length - appended.length, 'what was appended is not fetched again');
    } finally {
      await p.close();
    }
  });
});

/** A Gmail source backed up to an mbox archive, and a Gmail target to restore it into. */
interface MboxArchive {
  source: GmailPeer;
  target: GmailPeer;
  box: GmailMessage[];
  root: string;
  backup(): Promise<number | null>;
  restore(): Promise<JsonResult>;
  close(): Promise<void>;
}

async function mboxArchive(): Promise<MboxArchive> {
  const box = gmailMailbox();
  const source = await gmailPeer({ messages: box });
  const target = await gmailPeer({ messages: [] });
  const root = await mkdtemp(join(tmpdir(), 'mf-gmail-mbox-relabel-'));
  const env = { PW: 'pw', XDG_STATE_HOME: join(root, 'state') };
  return {
    source, target, box, root,
    backup: () =>
      runCli(['backup', '--from', `imap://alice@127.0.0.1:${source.port}`, '--tls-mode', 'plain', '--password-env', 'PW', '--to', `mbox:${join(root, 'mbox')}`], env, { timeoutMs: 90_000 }).then((r) => r.status),
    restore: () =>
      runCliJson(['restore', '--json', '--from', `mbox:${join(root, 'mbox')}`, '--to', `imap://bob@127.0.0.1:${target.port}`, '--tls-mode', 'plain', '--password-env', 'PW'], env),
    close: async () => {
      await source.close();
      await target.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Python's mailbox reading the archive's All Mail: `expr` of the mbox `box`, printed. */
async function python(a: MboxArchive, expr: string): Promise<string> {
  const read = `import mailbox, sys\nbox = mailbox.mbox(sys.argv[1], create=False)\nprint(${expr})`;
  return (await run('python3', ['-c', read, join(a.root, 'mbox', '[Gmail].sbd', 'All Mail')])).stdout.trim();
}

describe('a Gmail-mode mbox archive: label changes on the server carried on rerun', () => {
  test('the rerun downloads nothing; restore into Gmail gives the new labels, and so does a restore rerun after the next change; Python\'s mailbox reads the file', async () => {
    const a = await mboxArchive();
    try {
      assert.equal(await a.backup(), 0);
      const bodies = a.source.bodies;
      a.source.setLabels(0, ['Neu/Etikett']); // archived -> a label the archive never saw
      a.source.setLabels(2, []); // two taken off
      a.source.setLabels(3, ['\\Sent', '\\Starred', 'Work/Projects']); // one off, one on
      assert.equal(await a.backup(), 0);
      assert.equal(a.source.bodies, bodies, 'no body fetched again');
      const r = await a.restore();
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(labelView(a.target.messages), wanted(a.box), 'restored with the labels as they are now');
      a.source.setLabels(5, ['\\Inbox']);
      assert.equal(await a.backup(), 0);
      const again = await a.restore();
      assert.equal(again.status, 0, again.stderr);
      assert.equal(again.out['messages'], 0);
      assert.deepEqual(labelView(a.target.messages), wanted(a.box), 'a restore rerun carries the next change');
      assert.equal(await python(a, 'sorted(m["Message-ID"] for m in box)'), `[${[0, 1, 2, 3, 4, 5, 8].map((i) => `'<m${i}@gmail.test>'`).join(', ')}]`);
    } finally {
      await a.close();
    }
  });
});

describe('a Gmail-mode mbox archive whose state was lost', () => {
  test('the rerun matches All Mail by its headers with the label lines taken off: nothing fetched or written twice, the labels recorded again', async () => {
    const a = await mboxArchive();
    try {
      assert.equal(await a.backup(), 0);
      await unlink(join(a.root, 'mbox', '.mailferry-state.json'));
      const bodies = a.source.bodies;
      a.source.setLabels(1, ['Work']);
      assert.equal(await a.backup(), 0);
      assert.equal(a.source.bodies, bodies, 'no body fetched again');
      assert.equal(await python(a, 'len(box)'), '7', 'each message of All Mail once in the file');
      const r = await a.restore();
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(labelView(a.target.messages), wanted(a.box));
    } finally {
      await a.close();
    }
  });
});
