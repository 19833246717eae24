import type { Readable } from 'node:stream';
import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import type { Fingerprint, Match, Sink, SinkFolder, Tx } from './sink.js';

/**
 * A wrapper around any Sink that says which messages each commit made durable: `onCommitted` is
 * called once per message after `tx.commit()` resolved, for every message whose `write` resolved
 * and that `tx.refused()` does not list (watch mode's `--json` event per message). Everything else
 * passes through unchanged, the optional parts of the contract included.
 */
export function committedSink(sink: Sink, onCommitted: (sink: string, meta: MessageMeta) => void): Sink {
  return {
    name: sink.name,
    ...(sink.plan === undefined ? {} : { plan: (m: readonly MailboxInfo[]) => (sink.plan as NonNullable<Sink['plan']>).call(sink, m) }),
    open: async (mailbox) => new CommittedFolder(await sink.open(mailbox), (meta) => onCommitted(sink.name, meta)),
    close: () => sink.close(),
  };
}

class CommittedFolder implements SinkFolder {
  readonly syncFlags?: (metas: readonly MessageMeta[]) => Promise<number>;
  readonly removeGone?: (present: ReadonlySet<string>) => Promise<number>;

  constructor(
    private readonly inner: SinkFolder,
    private readonly onCommitted: (meta: MessageMeta) => void,
  ) {
    const { syncFlags, removeGone } = inner;
    if (syncFlags !== undefined) this.syncFlags = (metas) => syncFlags.call(inner, metas);
    if (removeGone !== undefined) this.removeGone = (present) => removeGone.call(inner, present);
  }

  get mailbox(): MailboxInfo {
    return this.inner.mailbox;
  }

  get known(): ReadonlySet<string> {
    return this.inner.known;
  }

  get needsRematch(): boolean {
    return this.inner.needsRematch;
  }

  fingerprints(): AsyncIterable<Fingerprint> {
    return this.inner.fingerprints();
  }

  rebase(uidValidity: bigint | undefined, matches: readonly Match[]): Promise<void> {
    return this.inner.rebase(uidValidity, matches);
  }

  async begin(): Promise<Tx> {
    const tx = await this.inner.begin();
    const written: MessageMeta[] = [];
    const wrapped: Tx = {
      write: async (meta: MessageMeta, body: Buffer | Readable) => {
        await tx.write(meta, body);
        written.push(meta);
      },
      commit: async () => {
        await tx.commit();
        const refused = new Set((tx.refused?.() ?? []).map((r) => r.id));
        for (const meta of written.splice(0)) if (!refused.has(meta.id)) this.onCommitted(meta);
      },
      abort: () => tx.abort(),
      ...(tx.refused === undefined ? {} : { refused: () => (tx.refused as NonNullable<Tx['refused']>).call(tx) }),
    };
    return wrapped;
  }
}
