import { EXIT } from './domain/errors.js';

/** What a run did: counts, bytes, and every skipped message or folder with its reason. */
export interface Skipped {
  readonly mailbox: string;
  readonly id?: string;
  readonly reason: string;
}

/** One folder's figures in a run (`--json` summary: `perFolder`). */
export interface FolderFigures {
  planned: number;
  plannedBytes: number;
  messages: number;
  bytes: number;
  unchanged: number;
  filtered: number;
}

export class RunReport {
  /** Where from and where to, as shown to the user (no secret): the source's identity, the sinks' names (absolute paths). */
  source?: string;
  sinks: readonly string[] = [];
  /** Per folder, in the order planned; added to by the pipeline (`count`). */
  readonly perFolder = new Map<string, FolderFigures>();
  folders = 0;
  messages = 0;
  bytes = 0;
  /** Messages already in the archive, not fetched again. */
  unchanged = 0;
  /** Messages left out by --since/--before/--max-size/--unseen-only. */
  filtered = 0;
  /** Messages already copied whose flag changes on the source were carried over. */
  flagUpdates = 0;
  /** Of `messages`, the extra copies made because of labels (a Gmail label copied as a folder); undefined when no folder was one. */
  labelCopies?: number;
  /**
   * Gmail to Gmail: the conversations of the messages copied, and how many Gmail split on the
   * target (IMAP cannot set a thread). Not a failure: every message is there, so the exit code
   * stays 0; said in the summary and as `threadsSplit` in --json (only when some were split).
   */
  threads?: { conversations: number; split: number };
  /** Messages removed from the server (POP3 --delete). */
  deleted = 0;
  /** `--sync-deletions`: messages removed from the IMAP target because they are gone from the source. */
  removed = 0;
  /** `forward`: messages the SMTP relay accepted in this run (undefined for other commands). */
  forwarded?: number;
  /** `forward --mark-sent`: messages recorded as sent without sending them. */
  markedSent?: number;
  planned = 0;
  plannedBytes = 0;
  /** Planned messages gone from the source before they could be fetched (expunged meanwhile). */
  vanished = 0;
  /** Planned messages a wrapper held back on purpose (a spent daily budget, a dry run). */
  held = 0;
  /** Planned messages not copied because the target lacking them is full (copying stopped). */
  notCopied = 0;
  /** Planned messages not copied because they were skipped (a refusal, a skipped folder), reported in `skipped`. */
  skippedMessages = 0;
  readonly skipped: Skipped[] = [];
  /** A daily transfer budget ran out: the run stopped early (exit 8); the next one resumes. */
  budgetReached = false;
  readonly started = Date.now();
  finished?: number;

  /** Add to a folder's figures. */
  count(mailbox: string, add: Partial<FolderFigures>): void {
    const f = this.perFolder.get(mailbox) ?? { planned: 0, plannedBytes: 0, messages: 0, bytes: 0, unchanged: 0, filtered: 0 };
    for (const [k, v] of Object.entries(add) as [keyof FolderFigures, number][]) f[k] += v;
    this.perFolder.set(mailbox, f);
  }

  get seconds(): number {
    return ((this.finished ?? Date.now()) - this.started) / 1000;
  }

  get exitCode(): number {
    if (this.budgetReached) return EXIT.budget;
    return this.skipped.length > 0 ? EXIT.partial : EXIT.ok;
  }

  summary(): string {
    const mb = (this.bytes / 1e6).toFixed(1);
    const skipped = this.skipped.length > 0 ? `, ${this.skipped.length} skipped` : '';
    const vanished = this.vanished > 0 ? `, ${this.vanished} vanished from the source meanwhile` : '';
    const filtered = this.filtered > 0 ? `, ${this.filtered} filtered out` : '';
    const flags = this.flagUpdates > 0 ? `, flags updated on ${this.flagUpdates}` : '';
    const deleted =
      (this.deleted > 0 ? `, ${this.deleted} deleted from the server` : '') +
      (this.removed > 0 ? `, ${this.removed} removed from the target (deleted on the source)` : '');
    const forwarded =
      (this.forwarded === undefined ? '' : `, ${this.forwarded} forwarded`) +
      (this.markedSent === undefined ? '' : `, ${this.markedSent} marked as sent (not sent)`);
    const copies = this.labelCopies === undefined || this.labelCopies === 0 ? '' : `, ${this.labelCopies} of them extra copies for labels`;
    const split = this.threads === undefined || this.threads.split === 0 ? '' : `, ${this.threads.split} of ${this.threads.conversations} Gmail conversations split`;
    const budget = this.budgetReached ? '; daily budget reached, resume next run' : '';
    const where = this.source === undefined ? '' : `; ${this.source} -> ${this.sinks.join(', ')}`;
    return `${this.folders} folders, ${this.messages} messages copied (${mb} MB)${copies}${split}${forwarded}, ${this.unchanged} already archived${flags}${filtered}${deleted}${vanished}${skipped}, ${this.seconds.toFixed(1)} s${budget}${where}`;
  }

  toJSON(): Record<string, unknown> {
    return {
      ...(this.source === undefined ? {} : { source: this.source, sinks: this.sinks }),
      started: new Date(this.started).toISOString(),
      folders: this.folders,
      messages: this.messages,
      bytes: this.bytes,
      ...(this.labelCopies === undefined ? {} : { labelCopies: this.labelCopies }),
      ...(this.threads === undefined || this.threads.split === 0 ? {} : { threadsSplit: this.threads.split }),
      unchanged: this.unchanged,
      filtered: this.filtered,
      flagUpdates: this.flagUpdates,
      deleted: this.deleted,
      removed: this.removed,
      vanished: this.vanished,
      ...(this.forwarded === undefined ? {} : { forwarded: this.forwarded }),
      ...(this.markedSent === undefined ? {} : { markedSent: this.markedSent }),
      skipped: this.skipped,
      budgetReached: this.budgetReached,
      seconds: Number(this.seconds.toFixed(3)),
      exitCode: this.exitCode,
      perFolder: [...this.perFolder].map(([mailbox, f]) => ({ mailbox, ...f, skipped: this.skipped.filter((x) => x.mailbox === mailbox).length })),
    };
  }
}
