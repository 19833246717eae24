import type { MailboxInfo } from '../domain/message.js';
import type { Sink, SinkFolder, Tx } from '../sinks/sink.js';
import type { Fetched, Source } from '../sources/source.js';
import type { Checkpoint } from '../state/checkpoint.js';

/**
 * `--dry-run` as two wrappers (DESIGN habit 8), so the pipeline runs unchanged and plans as usual
 * (its `planned` progress events are the plan), but nothing is written anywhere:
 *
 * - DryRunSink stands in for a real sink. It never calls the sink's `open` (an IMAP target would
 *   CREATE the folder, a local archive would repair files); what is already there is read from the
 *   sink's checkpoint alone: the recorded ids when the recorded UIDVALIDITY is the source's, else
 *   nothing (a real run would then match the target's messages by header and size first, so the
 *   plan is an upper bound). Its transactions write and record nothing.
 * - DryRunSource passes everything through but `fetch`, which yields no message: no body is
 *   downloaded, and the pipeline counts no message as copied.
 */
export class DryRunSink implements Sink {
  readonly caps = { keepsFlags: true, keepsDate: true, serial: false };
  constructor(
    readonly name: string,
    private readonly checkpoint: Checkpoint | undefined,
  ) {}

  open(mailbox: MailboxInfo): Promise<SinkFolder> {
    const cp = this.checkpoint?.folder(mailbox.path);
    const valid = cp !== undefined && !cp.rematching && cp.uidValidity === mailbox.uidValidity?.toString();
    return Promise.resolve(new DryRunFolder(mailbox, valid ? new Set(cp.ids) : new Set()));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

class DryRunFolder implements SinkFolder {
  readonly needsRematch = false;
  constructor(
    readonly mailbox: MailboxInfo,
    readonly known: ReadonlySet<string>,
  ) {}
  async *fingerprints(): AsyncIterable<never> {}
  async rebase(): Promise<void> {}
  begin(): Promise<Tx> {
    return Promise.resolve({ write: () => Promise.resolve(), commit: () => Promise.resolve(), abort: () => Promise.resolve() });
  }
}

export function dryRunSource(source: Source): Source {
  return {
    caps: source.caps,
    identity: source.identity,
    mailboxes: () => source.mailboxes(),
    select: (m) => source.select(m),
    list: (m, wanted) => source.list(m, wanted),
    headers: (m) => source.headers(m),
    fetch: async function* (): AsyncIterable<Fetched> {},
    close: () => source.close(),
    ...(source.filtered === undefined ? {} : { filtered: (m: MailboxInfo) => source.filtered?.(m) ?? 0 }),
  };
}

/** One folder of a plan: what a real run would copy into it. */
export interface PlannedFolder {
  mailbox: string;
  messages: number;
  bytes: number;
}
