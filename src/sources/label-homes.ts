import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import { encodeUtf7 } from '../formats/utf7.js';
import type { Fetched, HeaderSample, Missing, Selected, Source } from './source.js';
import { SourceWrapper } from './wrapper.js';

/**
 * `--labels keywords` (migrate from a Gmail source in Gmail mode into a server without Gmail's
 * labels): each message of the labelled folder (All Mail) is copied once, into the folder of its
 * most specific label (its home), and carries its other labels as IMAP keywords (RFC 3501 2.3.2).
 * A wrapper around the Gmail-mode source (DESIGN habit 8), so the pipeline and the IMAP target
 * see plain folders:
 *
 * - `mailboxes()`: each label folder that can be a home becomes a plain folder (its `label`
 *   dropped); the folders of \Starred and \Important are left out (those labels are flags:
 *   \Flagged, $Important); All Mail stays, for the messages with no home label (archived mail),
 *   with the \Archive role so it lands in the target's Archive folder where there is one.
 * - A home folder's messages are All Mail's (All Mail is listed once per run and kept, with each
 *   message's labels): `select`, `list`, `fetch`, `headers` and `missing` ask All Mail, with its
 *   UIDVALIDITY and UIDs as the ids, and hand each message on with `mailbox` = its home.
 * - The home (`homeOf`): the deepest user label (the most "/" levels; among equals the first by
 *   name), else \Sent, \Draft, \Inbox, else none (All Mail). Only labels shown as a folder count.
 * - Keywords (`labelKeyword`): `\Starred` is \Flagged (as Gmail itself maps it), another system
 *   label `\X` is `$X` ($Important is RFC 8457's), a user label its name in modified UTF-7 (RFC
 *   3501 5.1.3, as Thunderbird stores tag names) with characters an atom cannot hold (space, ( ) {
 *   % * " \ ] and controls) as `_`. A target whose PERMANENTFLAGS lacks \* drops them.
 * - A label changed on Gmail after the copy: the keywords follow on rerun (the IMAP target's flag
 *   sync); a message whose home changed is copied into its new home, the old copy stays.
 */
export class LabelHomes extends SourceWrapper {
  /** All Mail as the inner source lists it (labelled). */
  private labelled: MailboxInfo | undefined;
  /** Home path -> the folder as the inner source lists it. */
  private readonly homes = new Map<string, MailboxInfo>();
  /** label -> home path. */
  private readonly byLabel = new Map<string, string>();
  /** All Mail's messages of this run, listed once: id -> meta with labels. */
  private listing: Promise<Map<string, MessageMeta>> | undefined;
  private selected: Selected | undefined;

  constructor(inner: Source) {
    super(inner);
  }

  override async mailboxes(): Promise<MailboxInfo[]> {
    const all = await this.inner.mailboxes();
    this.labelled = all.find((m) => m.labelled === true);
    if (this.labelled === undefined) return all; // not Gmail mode: nothing to do
    const out: MailboxInfo[] = [];
    for (const m of all) {
      if (m.labelled === true) {
        const { labelled: _l, ...plain } = m;
        out.push({ ...plain, specialUse: '\\Archive' });
        this.homes.set(m.path, m);
      } else if (m.label !== undefined) {
        if (!canBeHome(m.label)) continue;
        const { label: _l, ...plain } = m;
        out.push(plain);
        this.homes.set(m.path, m);
        this.byLabel.set(m.label, m.path);
      } else out.push(m);
    }
    return out;
  }

  /** The home folder's path of a message with `labels`. */
  homeOf(labels: readonly string[]): string {
    const label = homeLabel(labels.filter((l) => this.byLabel.has(l)));
    return (label === undefined ? undefined : this.byLabel.get(label)) ?? (this.labelled as MailboxInfo).path;
  }

  private isHome(mailbox: MailboxInfo): boolean {
    return this.labelled !== undefined && this.homes.has(mailbox.path);
  }

  override async select(mailbox: MailboxInfo): Promise<Selected> {
    if (!this.isHome(mailbox)) return this.inner.select(mailbox);
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

  /** A message of All Mail as its home folder hands it on: the other labels as keywords. */
  private asHome(m: MessageMeta, home: MailboxInfo): MessageMeta {
    const labels = m.labels ?? [];
    const homeLabel = this.homes.get(home.path)?.label;
    const flags = new Set(m.flags);
    for (const l of labels) if (l !== homeLabel) flags.add(labelKeyword(l));
    const { labels: _l, ...rest } = m;
    return { ...rest, mailbox: home, flags };
  }

  override async *list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta> {
    if (!this.isHome(mailbox)) return yield* this.inner.list(mailbox, wanted);
    for (const m of (await this.all()).values()) {
      if (this.homeOf(m.labels ?? []) !== mailbox.path || !wanted(m.id)) continue;
      yield this.asHome(m, mailbox);
    }
  }

  override async *headers(mailbox: MailboxInfo): AsyncIterable<HeaderSample> {
    if (!this.isHome(mailbox)) return yield* this.inner.headers(mailbox);
    const all = await this.all();
    const sel = this.selected as Selected;
    for await (const h of this.inner.headers(sel.mailbox)) {
      const m = all.get(h.id);
      if (m !== undefined && this.homeOf(m.labels ?? []) === mailbox.path) yield h;
    }
  }

  override async *fetch(batch: readonly MessageMeta[], signal: AbortSignal): AsyncIterable<Fetched> {
    const first = batch[0];
    if (first === undefined || !this.isHome(first.mailbox)) return yield* this.inner.fetch(batch, signal);
    const all = await this.all();
    const byId = new Map(batch.map((m) => [m.id, m]));
    const inner = batch.map((m) => all.get(m.id)).filter((m): m is MessageMeta => m !== undefined);
    for await (const f of this.inner.fetch(inner, signal)) {
      const meta = byId.get(f.meta.id);
      if (meta !== undefined) yield { meta, body: f.body };
    }
  }

  override missing(mailbox: MailboxInfo, ids: readonly string[], signal: AbortSignal): Promise<Missing> {
    if (!this.isHome(mailbox) || this.selected === undefined) return this.inner.missing(mailbox, ids, signal);
    return this.inner.missing(this.selected.mailbox, ids, signal);
  }
}

/** \Starred and \Important are flags in a folder-based server, never a message's folder. */
function canBeHome(label: string): boolean {
  return label !== '\\Starred' && label !== '\\Important';
}

const SYSTEM_HOMES = ['\\Sent', '\\Draft', '\\Inbox'];

/** The most specific of `labels` (each shown as a folder that can be a home), or undefined. */
export function homeLabel(labels: readonly string[]): string | undefined {
  const user = labels.filter((l) => !l.startsWith('\\')).sort((a, b) => depth(b) - depth(a) || (a < b ? -1 : a > b ? 1 : 0));
  return user[0] ?? SYSTEM_HOMES.find((s) => labels.includes(s));
}

function depth(label: string): number {
  return label.split('/').length;
}

/** A label as an IMAP keyword (an atom, RFC 3501 9: flag-keyword). */
export function labelKeyword(label: string): string {
  if (label === '\\Starred') return '\\Flagged';
  if (label.startsWith('\\')) return `$${label.slice(1)}`;
  return encodeUtf7(label).replace(/[\s(){%*"\\\]\x00-\x1f\x7f]/g, '_');
}
