import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import type { Fetched, HeaderSample, Missing, Selected, Source } from './source.js';
import { SourceWrapper } from './wrapper.js';

/**
 * What `--labels keywords` (label-homes.ts) and `--labels folders` (label-folders.ts) share: a
 * wrapper around a Gmail-mode source (DESIGN habit 8) that shows All Mail's messages in plain
 * folders (views), so the pipeline and a target without labels see folders, not labels.
 *
 * - `mailboxes()` (the subclass's `show`): the folders as the target is to get them; each folder
 *   whose messages are All Mail's is registered as a view (`views`). Without a `labelled` folder
 *   (not Gmail mode) everything passes through.
 * - A view's messages are All Mail's (listed once per run and kept, with each message's labels):
 *   `select`, `list`, `fetch`, `headers` and `missing` ask All Mail, with its UIDVALIDITY and ids,
 *   and hand on each message the subclass `holds` in that view, as it makes it (`as`).
 */
export abstract class LabelViews extends SourceWrapper {
  /** All Mail as the inner source lists it (labelled). */
  protected labelled: MailboxInfo | undefined;
  /** View path -> the folder as the inner source lists it. */
  protected readonly views = new Map<string, MailboxInfo>();
  /** All Mail's messages of this run, listed once: id -> meta with labels. */
  private listing: Promise<Map<string, MessageMeta>> | undefined;
  private selected: Selected | undefined;

  constructor(inner: Source) {
    super(inner);
  }

  /** The folders shown for the inner list (All Mail among them, `labelled`); registers the views. */
  protected abstract show(all: readonly MailboxInfo[], labelled: MailboxInfo): MailboxInfo[];
  /** Whether All Mail's message `m` is shown in the view at `path`. */
  protected abstract holds(m: MessageMeta, path: string): boolean;
  /** All Mail's message `m` as the view `mailbox` hands it on. */
  protected abstract as(m: MessageMeta, mailbox: MailboxInfo): MessageMeta;

  override async mailboxes(): Promise<MailboxInfo[]> {
    const all = await this.inner.mailboxes();
    this.labelled = all.find((m) => m.labelled === true);
    return this.labelled === undefined ? all : this.show(all, this.labelled);
  }

  private isView(mailbox: MailboxInfo): boolean {
    return this.labelled !== undefined && this.views.has(mailbox.path);
  }

  override async select(mailbox: MailboxInfo): Promise<Selected> {
    if (!this.isView(mailbox)) return this.inner.select(mailbox);
    this.selected ??= await this.inner.select(this.labelled as MailboxInfo);
    const { uidValidity } = this.selected.mailbox;
    return { mailbox: { ...mailbox, ...(uidValidity === undefined ? {} : { uidValidity }) }, count: this.selected.count };
  }

  /** All Mail's messages, listed once per run with their labels. */
  private all(): Promise<Map<string, MessageMeta>> {
    this.listing ??= (async () => {
      const sel = this.selected ?? (await this.inner.select(this.labelled as MailboxInfo));
      this.selected = sel;
      const out = new Map<string, MessageMeta>();
      for await (const m of this.inner.list(sel.mailbox, () => true)) out.set(m.id, m);
      return out;
    })();
    this.listing.catch(() => (this.listing = undefined)); // a lost connection: listed again on the retry
    return this.listing;
  }

  override async *list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta> {
    if (!this.isView(mailbox)) return yield* this.inner.list(mailbox, wanted);
    for (const m of (await this.all()).values()) {
      if (!this.holds(m, mailbox.path) || !wanted(m.id)) continue;
      yield this.as(m, mailbox);
    }
  }

  override async *headers(mailbox: MailboxInfo): AsyncIterable<HeaderSample> {
    if (!this.isView(mailbox)) return yield* this.inner.headers(mailbox);
    const all = await this.all();
    const sel = this.selected as Selected;
    for await (const h of this.inner.headers(sel.mailbox)) {
      const m = all.get(h.id);
      if (m !== undefined && this.holds(m, mailbox.path)) yield h;
    }
  }

  override async *fetch(batch: readonly MessageMeta[], signal: AbortSignal): AsyncIterable<Fetched> {
    const first = batch[0];
    if (first === undefined || !this.isView(first.mailbox)) return yield* this.inner.fetch(batch, signal);
    const all = await this.all();
    const byId = new Map(batch.map((m) => [m.id, m]));
    const inner = batch.map((m) => all.get(m.id)).filter((m): m is MessageMeta => m !== undefined);
    for await (const f of this.inner.fetch(inner, signal)) {
      const meta = byId.get(f.meta.id);
      if (meta !== undefined) yield { meta, body: f.body };
    }
  }

  override missing(mailbox: MailboxInfo, ids: readonly string[], signal: AbortSignal): Promise<Missing> {
    if (!this.isView(mailbox) || this.selected === undefined) return this.inner.missing(mailbox, ids, signal);
    return this.inner.missing(this.selected.mailbox, ids, signal);
  }
}
