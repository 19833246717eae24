import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import type { Fetched, HeaderSample, Missing, Selected, Source, SourceCaps, Unlisted } from './source.js';

/**
 * A Source around another one that changes one aspect (DESIGN habit 8: a daily budget, a rate
 * limit, fault injection in tests) and hands everything else through. Subclasses override what
 * they change, usually `fetch`.
 */
export class SourceWrapper implements Source {
  /** The inner source's FolderWatch, when it has one (watch mode only asks; it copies nothing). */
  readonly watch?: Source['watch'];
  constructor(protected readonly inner: Source) {
    const watch = inner.watch;
    if (watch !== undefined) this.watch = (paths, opts) => watch.call(inner, paths, opts);
  }
  get caps(): SourceCaps {
    return this.inner.caps;
  }
  get identity(): string {
    return this.inner.identity;
  }
  mailboxes(): Promise<MailboxInfo[]> {
    return this.inner.mailboxes();
  }
  select(mailbox: MailboxInfo): Promise<Selected> {
    return this.inner.select(mailbox);
  }
  list(mailbox: MailboxInfo, wanted: (id: string) => boolean): AsyncIterable<MessageMeta> {
    return this.inner.list(mailbox, wanted);
  }
  headers(mailbox: MailboxInfo): AsyncIterable<HeaderSample> {
    return this.inner.headers(mailbox);
  }
  fetch(batch: readonly MessageMeta[], signal: AbortSignal): AsyncIterable<Fetched> {
    return this.inner.fetch(batch, signal);
  }
  missing(mailbox: MailboxInfo, ids: readonly string[], signal: AbortSignal): Promise<Missing> {
    return this.inner.missing(mailbox, ids, signal);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  filtered(mailbox: MailboxInfo): number {
    return this.inner.filtered?.(mailbox) ?? 0;
  }
  unlisted(mailbox: MailboxInfo): readonly Unlisted[] {
    return this.inner.unlisted?.(mailbox) ?? [];
  }
}

/** `missing()` of a wrapper that held back `held` of `ids` itself: those, and the inner source's answer for the rest. */
export async function withHeld(inner: Source, mailbox: MailboxInfo, ids: readonly string[], held: ReadonlySet<string>, signal: AbortSignal): Promise<Missing> {
  const rest = ids.filter((id) => !held.has(id));
  const answer = rest.length === 0 ? { gone: new Set<string>() } : await inner.missing(mailbox, rest, signal);
  const mine = ids.filter((id) => held.has(id));
  return mine.length === 0 ? answer : { ...answer, held: new Set([...(answer.held ?? []), ...mine]) };
}

/** Bytes a fetched message counts for: its size on the wire, else its body's length if known. */
export function sizeOf(f: Fetched): number {
  return f.meta.size ?? (Buffer.isBuffer(f.body) ? f.body.length : 0);
}
