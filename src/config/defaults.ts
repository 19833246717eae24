/**
 * The defaults of every command, stated once: the loaders fill them in (a flag not given is left
 * out of the raw flags), and cli.ts shows them in --help from here. Nothing imported, so --help
 * loads no more than it did.
 */
export const DEFAULTS = {
  /** Parallel IMAP connections per account (`--connections`, `--target-connections`). */
  connections: 4,
  /** Rows of a batch file run at once on this machine (`mailferry batch --jobs`). */
  jobs: 1,
  /** Maildir folder layout (`--layout`). */
  layout: 'maildir++',
  /** Bytes per fetch batch, in MiB (`--batch-mb`). */
  batchMb: 16,
  /** Messages per fetch batch, whatever their size. */
  batchMessages: 2000,
  /** A message larger than this is streamed, not held in memory. */
  streamThreshold: 8 << 20,
  /** The largest message a server may send (`--max-message-size`): 1 GiB, as drivers/message-limit.ts. */
  maxMessageSize: 1 << 30,
  /** `--watch`: a full incremental pass this often, and a heartbeat event this often. */
  watchInterval: '15m',
  watchHeartbeat: '60s',
} as const;
