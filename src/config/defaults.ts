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
} as const;
