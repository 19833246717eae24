/**
 * Every Sink, built the same way for the one contract suite (test/contract/sink.test.ts): a kind
 * makes a sink over a directory of its own (the archive, or the state file of a target), reads
 * back what the destination holds without the sink's help, and says in what form a written body is
 * stored there. Calling `make` again on the same directory is a rerun (or a restart after a crash).
 *
 * The IMAP target writes into the Dovecot user `target`; the SMTP sink sends to `smtp-server` on
 * loopback, one recipient per directory, so the tests of one file never see each other's messages.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { passwordCredentials } from '../../src/auth/credentials.js';
import { STATE_FILE } from '../../src/commands/archive.js';
import type { MailboxInfo } from '../../src/domain/message.js';
import { maildirFolderDir, mboxFolderFile } from '../../src/drivers/archive-paths.js';
import { ImapAppendSink } from '../../src/drivers/imap/target.js';
import { MaildirSink } from '../../src/drivers/maildir/sink.js';
import { MboxSink } from '../../src/drivers/mbox/sink.js';
import { SmtpSink } from '../../src/drivers/smtp/sink.js';
import { smtpSender } from '../../src/drivers/smtp/transport.js';
import { lfToCrlf } from '../../src/formats/encoder.js';
import { toLf } from '../../src/formats/fingerprint.js';
import { silentLogger } from '../../src/log/logger.js';
import type { Sink } from '../../src/sinks/sink.js';
import { Checkpoint } from '../../src/state/checkpoint.js';
import type { DovecotServer } from '../../scripts/dev/dovecot.js';
import { readMaildirFolder, readMboxFile } from './archive.js';
import { fetchAll, type Account } from './server.js';
import { smtpView, type TestSmtp } from './smtp.js';

/** The source account the sinks' state names (no source is contacted). */
export const SINK_SOURCE = 'imap://source@example.org:143';

/** A message as the destination holds it. */
export interface Stored {
  body: Buffer;
  flags?: ReadonlySet<string>;
  date?: Date;
}

export interface SinkKind {
  name: string;
  make(dir: string): Promise<Sink>;
  read(dir: string, mailbox: MailboxInfo): Promise<Stored[]>;
  /** A body as written, in the form the destination stores it. */
  stored(body: Buffer): Buffer;
  /** The destination keeps flags and internal dates (SMTP keeps neither). */
  keepsFlags: boolean;
  keepsDate: boolean;
  /**
   * `write` is final: SMTP cannot take back what the relay accepted, so a written message is
   * recorded (known) before `commit`, and `abort` has nothing to undo.
   */
  finalWrites: boolean;
}

export function maildirKind(): SinkKind {
  return {
    name: 'maildir',
    make: async (dir) => new MaildirSink(dir, 'maildir++', await Checkpoint.load(join(dir, STATE_FILE), SINK_SOURCE), silentLogger),
    read: (dir, m) => readMaildirFolder(maildirFolderDir(dir, 'maildir++', m)),
    stored: toLf,
    keepsFlags: true,
    keepsDate: true,
    finalWrites: false,
  };
}

export function mboxKind(): SinkKind {
  return {
    name: 'mbox',
    make: async (dir) => new MboxSink(dir, await Checkpoint.load(join(dir, STATE_FILE), SINK_SOURCE)),
    read: (dir, m) => readMboxFile(mboxFolderFile(dir, m), dir, m.path, SINK_SOURCE),
    stored: toLf,
    keepsFlags: true,
    keepsDate: true,
    finalWrites: false,
  };
}

/**
 * `server()`: the running Dovecot (read only once the suite's before() hook ran). `multiAppend`:
 * one MULTIAPPEND per group (RFC 3502, Dovecot offers it) or one APPEND per message.
 */
export function imapKind(server: () => DovecotServer, account: Account, multiAppend: boolean): SinkKind {
  return {
    name: multiAppend ? 'imap append (MULTIAPPEND)' : 'imap append (one APPEND each)',
    make: async (dir) => {
      const s = server();
      return new ImapAppendSink({
        endpoint: { kind: 'imap', user: account.name, host: s.host, port: s.imapPort, tls: 'plain' },
        credentials: passwordCredentials(account.password),
        insecure: false,
        connections: 3,
        checkpoint: await Checkpoint.load(join(dir, 'state.json'), SINK_SOURCE),
        log: silentLogger,
        debug: false,
        multiAppend,
      });
    },
    read: async (_dir, m) => {
      const got = await fetchAll(server(), account, m.path).catch(() => []);
      // \Recent is the server's, per session (RFC 3501 2.3.2), never one a sink sets.
      return got.map((g) => ({ body: g.raw, flags: new Set([...g.flags].filter((f) => f !== '\\Recent')), date: g.internalDate }));
    },
    stored: (b) => lfToCrlf(b),
    keepsFlags: true,
    keepsDate: true,
    finalWrites: false,
  };
}

/** The recipient of a directory's messages. */
const rcptOf = (dir: string): string => `${basename(dir).toLowerCase()}@example.org`;

/** `relay()`: the running smtp-server (read only once the suite's before() hook ran). */
export function smtpKind(relay: () => TestSmtp): SinkKind {
  return {
    name: 'smtp',
    make: async (dir) => {
      const r = relay();
      return new SmtpSink({
        sender: smtpSender({
          endpoint: { kind: 'smtp', user: '', host: '127.0.0.1', port: r.port, tls: 'tls' },
          ca: await readFile(r.caFile),
          insecure: false,
          log: silentLogger,
          debug: false,
        }),
        envelope: { from: 'me@example.org', to: rcptOf(dir) },
        checkpoint: await Checkpoint.load(join(dir, 'forward.json'), SINK_SOURCE),
        name: 'test relay',
        retries: 2,
        retryBaseMs: 10,
        signal: new AbortController().signal,
        log: silentLogger,
      });
    },
    // One recipient per directory; a directory's tests forward one mailbox each.
    read: (dir) => Promise.resolve(relay().received.filter((r) => r.to.join() === rcptOf(dir)).map((r) => ({ body: r.data }))),
    stored: smtpView,
    keepsFlags: false,
    keepsDate: false,
    finalWrites: true,
  };
}
