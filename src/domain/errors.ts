/**
 * Typed errors. Every error that reaches the user is a MailferryError with a kind; the kind maps to
 * an exit code (documented in the README and in --help). Code branches on `kind`, never on text.
 * Messages are one line and never contain a secret.
 */
export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2, // bad flags or config: stopped before any I/O
  partial: 3, // some messages or folders skipped; the rest is done
  auth: 4, // login refused
  network: 5, // connection refused, unknown host, dropped and not recovered, TLS failure
  destination: 6, // archive not writable, disk full
  locked: 7, // another run holds the archive lock
  budget: 8, // a daily transfer budget (download or upload) is spent: what was copied is kept, the next run resumes
  differences: 9, // verify: the copy differs from the source (each difference listed); not an error of the run
  interrupted: 130, // SIGINT / SIGTERM: state is consistent, rerun resumes
} as const;

/**
 * `message`: one message skipped (the rest goes on); `mailbox`: one folder skipped; `quota`: the
 * target account is full, so the run stops copying (every further APPEND would fail too); all three
 * leave a consistent state and exit 3 (partial): a rerun finishes what is left.
 */
export type ErrorKind = Exclude<keyof typeof EXIT, 'ok' | 'partial' | 'differences'> | 'tls' | 'protocol' | 'message' | 'mailbox' | 'quota';

const exitOf: Record<ErrorKind, number> = {
  internal: EXIT.internal,
  usage: EXIT.usage,
  auth: EXIT.auth,
  network: EXIT.network,
  tls: EXIT.network,
  protocol: EXIT.network,
  destination: EXIT.destination,
  locked: EXIT.locked,
  budget: EXIT.budget,
  interrupted: EXIT.interrupted,
  message: EXIT.partial,
  mailbox: EXIT.partial,
  quota: EXIT.partial,
};

/**
 * `retryable`: a new connection may succeed (dropped connection, timeout), so the pipeline retries.
 * `retryAfterMs`: the server is throttling us and says (or we assume) how long to wait before the
 * retry; such retries are counted apart from failures (see domain/retry.ts).
 */
export class MailferryError extends Error {
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  constructor(kind: ErrorKind, message: string, opts: { cause?: unknown; retryable?: boolean; retryAfterMs?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MailferryError';
    this.kind = kind;
    this.retryable = opts.retryable ?? opts.retryAfterMs !== undefined;
    this.retryAfterMs = opts.retryAfterMs;
  }
  get exitCode(): number {
    return exitOf[this.kind];
  }
}

export function isMailferryError(e: unknown): e is MailferryError {
  return e instanceof MailferryError;
}

/** The Node error code (ENOSPC, ECONNREFUSED, ...) of an unknown thrown value, if any. */
const bySource = new WeakSet<MailferryError>();

/**
 * Mark `e` as the source's fault (a body stream that failed, whichever sink was reading it), so the
 * pipeline can tell it from a sink's own error of the same kind: a lost connection of the source
 * keeps what the batch wrote and asks again for the rest, a lost connection of a sink (an IMAP
 * target kicked) does not, since that sink cannot vouch for what it was sending.
 */
export function markSourceFault(e: MailferryError): MailferryError {
  bySource.add(e);
  return e;
}

export function isSourceFault(e: unknown): boolean {
  return e instanceof MailferryError && bySource.has(e);
}

export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const code = (e as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Map a file-system error while writing the archive to a destination error with a clear line. */
export function destinationError(e: unknown, what: string): MailferryError {
  if (e instanceof MailferryError) return e;
  const code = errnoCode(e);
  const reason =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? 'no space left on device'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EROFS'
          ? 'read-only file system'
          : code === 'EFBIG'
            ? 'file too large (a per-file size limit)'
            : code === 'ENOTDIR' || code === 'EEXIST'
              ? 'a file is in the way'
              : code === 'ENOENT'
                ? 'cannot create it (a parent directory is missing or read-only)'
                : (code ?? 'write failed');
  return new MailferryError('destination', `cannot write ${what}: ${reason}`, { cause: e });
}
