import type { MailboxInfo } from '../domain/message.js';
import type { Sink, SinkFolder, Tx } from '../sinks/sink.js';
import type { Fetched, Missing, Source } from '../sources/source.js';
import { SourceWrapper } from '../sources/wrapper.js';
import type { ImapAppendSink } from '../drivers/imap/target.js';
import type { Checkpoint } from '../state/checkpoint.js';

/**
 * `--dry-run` as two wrappers (DESIGN habit 8), so the pipeline runs unchanged and plans as usual
 * (its `planned` progress events are the plan), but nothing is written anywhere:
 *
 * - DryRunSink stands in for a real sink. It never calls the sink's `open` (an IMAP target would
 *   CREATE the folder, a local archive would repair files); what is already there is read from the
 *   sink's checkpoint alone: the recorded ids when the recorded UIDVALIDITY is the source's, else
 *   nothing (a real run would then match the target's messages by header and size first, so the
 *   plan is an upper bound). Its transactions write and record nothing. With `--sync-deletions`,
 *   an IMAP target's folder counts what a real run would remove (recorded ids with a recorded
 *   target UID that the source no longer lists) and removes nothing.
 * - DryRunSource passes everything through but `fetch`, which yields no message: no body is
 *   downloaded, and the pipeline counts no message as copied (`missing()` says each was held back).
 */
export class DryRunSink implements Sink {
  /** Source path -> where it would go on an IMAP target, and whether that folder exists. */
  readonly targets = new Map<string, TargetFolder>();
  constructor(
    readonly name: string,
    private readonly checkpoint: Checkpoint | undefined,
    /** An IMAP target's mapping (ImapAppendSink.describeTarget): read-only, creates nothing. */
    private readonly describe?: (mailbox: MailboxInfo) => Promise<TargetFolder>,
  ) {}

  async open(mailbox: MailboxInfo): Promise<SinkFolder> {
    if (this.describe !== undefined && mailbox.noSelect !== true) this.targets.set(mailbox.path, await this.describe(mailbox));
    const cp = this.checkpoint?.folder(mailbox.path);
    const valid = cp !== undefined && !cp.rematching && cp.uidValidity === mailbox.uidValidity?.toString();
    const known = valid ? new Set(cp.ids) : new Set<string>();
    return new DryRunFolder(mailbox, known, this.describe === undefined ? undefined : (cp?.targetUids ?? new Map()));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

class DryRunFolder implements SinkFolder {
  readonly needsRematch = false;
  /** An IMAP target's: how many a real run would remove. */
  readonly removeGone?: (present: ReadonlySet<string>) => Promise<number>;
  constructor(
    readonly mailbox: MailboxInfo,
    readonly known: ReadonlySet<string>,
    targetUids?: ReadonlyMap<string, number>,
  ) {
    if (targetUids !== undefined) this.removeGone = (present) => Promise.resolve([...known].filter((id) => !present.has(id) && targetUids.has(id)).length);
  }
  async *fingerprints(): AsyncIterable<never> {}
  async rebase(): Promise<void> {}
  begin(): Promise<Tx> {
    return Promise.resolve({ write: () => Promise.resolve(), commit: () => Promise.resolve(), abort: () => Promise.resolve() });
  }
}

/** The dry-run stand-in of an IMAP target: logs in (and fails as a real run would), creates nothing. */
export async function dryRunTarget(sink: ImapAppendSink, checkpoint: Checkpoint): Promise<DryRunSink> {
  await sink.withConn(async () => undefined);
  return new DryRunSink(sink.name, checkpoint, (m) => sink.describeTarget(m));
}

export function dryRunSource(source: Source): Source {
  return new DryRunSource(source);
}

class DryRunSource extends SourceWrapper {
  override async *fetch(): AsyncIterable<Fetched> {}
  override missing(_mailbox: MailboxInfo, ids: readonly string[]): Promise<Missing> {
    return Promise.resolve({ gone: new Set(), held: new Set(ids) });
  }
}

export interface TargetFolder {
  path: string;
  exists: boolean;
}

/** One folder of a plan: what a real run would copy into it and, for an IMAP target, where. */
export interface PlannedFolder {
  mailbox: string;
  messages: number;
  bytes: number;
  /** Messages the copy already holds (copied by an earlier run): not copied again. */
  present?: number;
  /** The target folder (the target's delimiter) and whether a real run would create it. */
  target?: string;
  create?: boolean;
  /** `--sync-deletions`: messages a real run would remove from the target (deleted on the source). */
  remove?: number;
}
