import { stat } from 'node:fs/promises';
import type { Credentials } from '../auth/credentials.js';
import { MailferryError } from '../domain/errors.js';
import type { LocalEndpoint, RemoteEndpoint } from '../endpoints/url.js';
import type { Logger } from '../log/logger.js';
import type { MaildirLayout } from '../drivers/maildir/sink.js';
import { ImapSource } from '../drivers/imap/source.js';
import { MaildirSource } from '../drivers/maildir/source.js';
import { MboxSource } from '../drivers/mbox/source.js';
import { Pop3Source } from '../drivers/pop3/source.js';
import type { Source } from '../sources/source.js';

/** What every Source a command builds is given. */
export interface SourceOptions {
  streamThreshold: number;
  /** `--max-message-size`: the most a server may send for one message (drivers/message-limit.ts). */
  maxMessageSize?: number;
  /** The run's: an IMAP source closes its connections when it is aborted, so SIGTERM is answered at once. */
  signal?: AbortSignal;
  log: Logger;
  debug: boolean;
}

export interface AccountSpec {
  endpoint: RemoteEndpoint;
  credentials: Credentials;
  ca?: Buffer;
  insecure: boolean;
  /** IMAP connections (a POP3 maildrop takes one). */
  connections: number;
  /** POP3 without UIDL (`--no-uidl`). */
  noUidl?: boolean;
  /** The sinks keep Gmail labels: an IMAP source uses Gmail mode where the server offers it. */
  labels?: boolean;
}

/**
 * MAILFERRY_IMAP_COMMAND_MS, for tests only (not a setting: no flag, not in --help): the IMAP
 * per-command deadline in milliseconds instead of 10 minutes (drivers/imap/pool.ts COMMAND_MS),
 * so that a test of a server trickling its answer ends in seconds. Anything but a positive
 * integer is ignored.
 */
export function commandDeadline(env: NodeJS.ProcessEnv = process.env): { commandMs?: number } {
  const v = env['MAILFERRY_IMAP_COMMAND_MS'];
  return v !== undefined && /^[1-9]\d{0,8}$/.test(v) ? { commandMs: Number(v) } : {};
}

/** The Source for a mail account: IMAP or POP3, by the address's scheme. */
export function accountSource(a: AccountSpec, o: SourceOptions): Source {
  const common = {
    endpoint: a.endpoint,
    credentials: a.credentials,
    ...(a.ca === undefined ? {} : { ca: a.ca }),
    insecure: a.insecure,
    streamThreshold: o.streamThreshold,
    log: o.log,
    debug: o.debug,
    ...(o.maxMessageSize === undefined ? {} : { maxMessageSize: o.maxMessageSize }),
  };
  return a.endpoint.kind === 'pop3' ? new Pop3Source({ ...common, noUidl: a.noUidl ?? false }) : new ImapSource({ ...common, connections: a.connections, labels: a.labels === true, ...(o.signal === undefined ? {} : { signal: o.signal }), ...commandDeadline() });
}

/** The Source for an archive mailferry wrote (read back, never written): a usage error when it is not there. */
/** `labels`: a Gmail-mode archive read in Gmail mode (drivers/maildir/gmail-archive.ts, mbox/gmail-archive.ts). */
export async function archiveSource(e: LocalEndpoint, layout: MaildirLayout, o: SourceOptions, labels = false): Promise<Source> {
  const isDir = await stat(e.path).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) throw new MailferryError('usage', `no archive at ${e.path} (--from ${e.kind}:DIR must be a directory)`);
  const local = { root: e.path, streamThreshold: o.streamThreshold, log: o.log };
  return e.kind === 'maildir' ? new MaildirSource({ ...local, layout, labels }) : new MboxSource({ ...local, labels });
}
