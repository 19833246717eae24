import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { destinationError } from '../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import type { Logger } from '../log/logger.js';
import { writeFileAtomic } from '../state/atomic.js';
import { accountOf } from '../state/checkpoint.js';
import type { Fetched, Missing, Source } from './source.js';
import { SourceWrapper, sizeOf, withHeld } from './wrapper.js';

/**
 * A daily transfer budget per account (Gmail: 2500 MB a day down by IMAP, 1250 MB by POP3, 500 MB
 * up): the bytes per UTC day are counted in a small state file, `download-<16 hex>.json` or
 * `upload-<16 hex>.json` in the state directory (the hex from the account, user@host, as the
 * target state names it; no secret; 0600), so that several runs on one day share the budget.
 * An upload budget (the target of restore or migrate) wraps the source too: what is fetched is
 * what gets appended (a message fetched only for a local `--archive` counts as well: on the safe
 * side). A message larger than the whole budget is fetched alone at the start of a day (else it
 * could never be), and the budget is spent for that day.
 *
 * The wrapper never cuts a message or a batch in flight: `fetch` reserves the sizes of the
 * messages it is about to fetch, and fetches only the leading part of a batch that fits in what
 * is left; from the first message that does not fit, the budget is `reached` and every later
 * `fetch` yields nothing. The pipeline sees fewer messages, commits what it has (durable, acknowledged
 * as always), hears from `missing()` that the rest was held back (not lost, not an error), and
 * finishes; the command then reports "budget reached" (exit 8), and the next run,
 * on a new UTC day, fetches what is missing. Counted is what the server sent (a batch retried
 * after a dropped connection counts twice, as the provider counts it).
 */
export interface BudgetState {
  version: 1;
  account: string;
  /** UTC day, YYYY-MM-DD. */
  day: string;
  /** Bytes fetched on that day. */
  bytes: number;
}

export type BudgetKind = 'download' | 'upload';

export function budgetPath(dir: string, identity: string, kind: BudgetKind): string {
  const hash = createHash('sha256').update(accountOf(identity)).digest('hex').slice(0, 16);
  return join(dir, `${kind}-${hash}.json`);
}

const utcDay = (d: Date): string => d.toISOString().slice(0, 10);

export class DailyBudget {
  private bytes = 0;
  private reserved = 0;
  private day: string;
  private writing: Promise<void> = Promise.resolve();
  /** True once a message did not fit: nothing more is fetched this run. */
  reached = false;

  private constructor(
    readonly path: string,
    readonly kind: BudgetKind,
    readonly account: string,
    readonly limit: number,
    private readonly now: () => Date,
  ) {
    this.day = utcDay(now());
  }

  /** Load the state of `identity` from `dir` (missing or unreadable: nothing used yet today). */
  static async open(dir: string, identity: string, kind: BudgetKind, limit: number, log: Logger, now: () => Date = () => new Date()): Promise<DailyBudget> {
    const b = new DailyBudget(budgetPath(dir, identity, kind), kind, accountOf(identity), limit, now);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (e: unknown) {
      throw destinationError(e, `state directory ${dir}`);
    }
    let text: string | undefined;
    try {
      text = await readFile(b.path, 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      try {
        const s = JSON.parse(text) as Partial<BudgetState>;
        if (s.day === b.day && typeof s.bytes === 'number' && s.bytes >= 0) b.bytes = s.bytes;
      } catch {
        log.warn(`${b.path}: unreadable daily budget state; counting today from zero`);
      }
    }
    return b;
  }

  /** Bytes fetched today, this run included. */
  get used(): number {
    this.rollOver();
    return this.bytes;
  }

  /** A new UTC day started during the run: the count starts again. */
  private rollOver(): void {
    const today = utcDay(this.now());
    if (today !== this.day) {
      this.day = today;
      this.bytes = 0;
      this.reached = false;
    }
  }

  /** The leading messages of `batch` that fit in what is left today, reserved; sets `reached` if not all fit. */
  reserve(batch: readonly MessageMeta[]): { take: MessageMeta[]; bytes: number } {
    this.rollOver();
    const take: MessageMeta[] = [];
    let bytes = 0;
    if (this.reached) return { take, bytes };
    for (const m of batch) {
      const n = m.size ?? 0;
      // A message larger than a whole day's budget could never fit: it may start a fresh day alone.
      const alone = n > this.limit && this.bytes + this.reserved + bytes === 0;
      if (this.bytes + this.reserved + bytes + n > this.limit && !alone) {
        this.reached = true;
        break;
      }
      take.push(m);
      bytes += n;
    }
    this.reserved += bytes;
    return { take, bytes };
  }

  /** A reservation is over: `fetched` bytes really came. Saved before returning. */
  async settle(reserved: number, fetched: number): Promise<void> {
    this.reserved -= reserved;
    this.bytes += fetched;
    await this.save();
  }

  save(): Promise<void> {
    const state: BudgetState = { version: 1, account: this.account, day: this.day, bytes: this.bytes };
    const write = async (): Promise<void> => {
      try {
        await writeFileAtomic(this.path, `${JSON.stringify(state)}\n`);
      } catch (e: unknown) {
        throw destinationError(e, `daily budget state ${this.path}`);
      }
    };
    // One write at a time: writeFileAtomic's temp name is per process.
    this.writing = this.writing.then(write, write);
    return this.writing;
  }
}

export class BudgetSource extends SourceWrapper {
  /** Ids (mailbox path, NUL, id) held back by `fetch` and not yet asked about by `missing`. */
  private readonly held = new Set<string>();

  constructor(inner: Source, readonly budget: DailyBudget) {
    super(inner);
  }

  override async *fetch(batch: readonly MessageMeta[], signal: AbortSignal): AsyncIterable<Fetched> {
    const { take, bytes } = this.budget.reserve(batch);
    for (const m of batch.slice(take.length)) this.held.add(`${m.mailbox.path}\0${m.id}`);
    if (take.length === 0) return;
    let fetched = 0;
    try {
      for await (const f of this.inner.fetch(take, signal)) {
        fetched += sizeOf(f);
        yield f;
      }
    } finally {
      await this.budget.settle(bytes, fetched);
    }
  }

  override missing(mailbox: MailboxInfo, ids: readonly string[], signal: AbortSignal): Promise<Missing> {
    const key = (id: string): string => `${mailbox.path}\0${id}`;
    const held = new Set(ids.filter((id) => this.held.delete(key(id))));
    return withHeld(this.inner, mailbox, ids, held, signal);
  }
}
