/**
 * Every Source, built the same way for the one contract suite (test/contract/source.test.ts): the
 * IMAP and POP3 sources read a Dovecot user seeded with the suite's INBOX; the Maildir and mbox
 * sources read an archive that our own sinks wrote from the same messages (as `restore` reads what
 * `backup` wrote). A kind says what bytes it hands over for a seeded message and what it reports.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { passwordCredentials } from '../../src/auth/credentials.js';
import { STATE_FILE } from '../../src/commands/archive.js';
import type { MailboxInfo } from '../../src/domain/message.js';
import { ImapSource } from '../../src/drivers/imap/source.js';
import { MaildirSink } from '../../src/drivers/maildir/sink.js';
import { MaildirSource } from '../../src/drivers/maildir/source.js';
import { MboxSink } from '../../src/drivers/mbox/sink.js';
import { MboxSource } from '../../src/drivers/mbox/source.js';
import { Pop3Source } from '../../src/drivers/pop3/source.js';
import { lfToCrlf } from '../../src/formats/encoder.js';
import { toLf } from '../../src/formats/fingerprint.js';
import { silentLogger } from '../../src/log/logger.js';
import type { Sink } from '../../src/sinks/sink.js';
import type { Source } from '../../src/sources/source.js';
import { Checkpoint } from '../../src/state/checkpoint.js';
import type { DovecotServer } from '../../scripts/dev/dovecot.js';
import type { SeedMessage } from '../../scripts/dev/seed.js';
import { imapView, pop3View } from '../fixtures/nasty.js';
import type { Account } from './server.js';

export interface SourceKind {
  name: string;
  /** Once before the cases: write the archive a local source reads. */
  prepare?(): Promise<void>;
  /** Once after them. */
  cleanup?(): Promise<void>;
  make(): Source;
  /** The same source with a wrong password (network sources only). */
  wrongLogin?(): Source;
  /** A seeded message as this source hands it over (the wire form). */
  view(raw: Buffer): Buffer;
  /** Reports flags and internal dates (POP3 has neither). */
  flags: boolean;
  /** Has a uidValidity per mailbox (POP3: UIDLs need none). */
  uidValidity: boolean;
}

interface NetOptions {
  server: () => DovecotServer;
  account: Account;
  streamThreshold: number;
}

const common = (password: string, streamThreshold: number) => ({
  credentials: passwordCredentials(password),
  insecure: false,
  streamThreshold,
  log: silentLogger,
  debug: false,
});

export function imapSourceKind(o: NetOptions): SourceKind {
  const make = (password: string): Source => {
    const s = o.server();
    return new ImapSource({
      ...common(password, o.streamThreshold),
      ca: readFileSync(s.caFile),
      endpoint: { kind: 'imap', user: o.account.name, host: '127.0.0.1', port: s.imapsPort, tls: 'tls' },
      connections: 3,
    });
  };
  return { name: 'imap', make: () => make(o.account.password), wrongLogin: () => make('wrong-password'), view: imapView, flags: true, uidValidity: true };
}

export function pop3SourceKind(o: NetOptions): SourceKind {
  const make = (password: string): Source => {
    const s = o.server();
    return new Pop3Source({
      ...common(password, o.streamThreshold),
      ca: readFileSync(s.caFile),
      endpoint: { kind: 'pop3', user: o.account.name, host: '127.0.0.1', port: s.pop3sPort, tls: 'tls' },
    });
  };
  return { name: 'pop3', make: () => make(o.account.password), wrongLogin: () => make('wrong-password'), view: pop3View, flags: false, uidValidity: false };
}

/** A Maildir or mbox archive of `inbox`, written by our sink, read back by our source. */
export function archiveSourceKind(format: 'maildir' | 'mbox', inbox: readonly SeedMessage[], streamThreshold: number): SourceKind {
  let root = '';
  const source = 'imaps://alice@example.org:993';
  return {
    name: format,
    async prepare() {
      root = await mkdtemp(join(tmpdir(), `mf-source-${format}-`));
      const cp = await Checkpoint.load(join(root, STATE_FILE), source);
      const sink: Sink = format === 'maildir' ? new MaildirSink(root, 'maildir++', cp, silentLogger) : new MboxSink(root, cp);
      const mailbox: MailboxInfo = { path: 'INBOX', delimiter: '/', uidValidity: 7n };
      const folder = await sink.open(mailbox);
      const tx = await folder.begin();
      let uid = 0;
      for (const m of inbox) {
        uid++;
        await tx.write({ mailbox, id: String(uid), size: m.raw.length, flags: new Set(m.flags ?? []), ...(m.date === undefined ? {} : { internalDate: m.date }) }, m.raw);
      }
      await tx.commit();
      await sink.close();
      await cp.save();
    },
    async cleanup() {
      if (root !== '') await rm(root, { recursive: true, force: true });
    },
    make: () =>
      format === 'maildir'
        ? new MaildirSource({ root, layout: 'maildir++', streamThreshold, log: silentLogger })
        : new MboxSource({ root, streamThreshold, log: silentLogger }),
    // The archive keeps LF; the source hands out the wire form again.
    view: (raw) => lfToCrlf(toLf(raw)),
    flags: true,
    uidValidity: true,
  };
}
