import type { Readable } from 'node:stream';
import { labelFolder } from '../labels.js';
import { MailferryError } from '../../domain/errors.js';
import type { MailboxInfo, MessageMeta } from '../../domain/message.js';
import { fingerprintKey, headerBlock, toLf } from '../../formats/fingerprint.js';
import { withRetry } from '../../domain/retry.js';
import type { Logger } from '../../log/logger.js';
import type { SmtpEnvelope, SmtpSender } from './transport.js';
import type { Checkpoint, FolderCheckpoint, SentRecord } from '../../state/checkpoint.js';
import type { Fingerprint, Match, Refusal, Sink, SinkFolder, Tx } from '../../sinks/sink.js';
import { collect } from '../body.js';

/**
 * SMTP forward (`mailferry forward`): each message is sent to one recipient through a relay, its
 * bytes unchanged (transport.ts says what SMTP DATA itself changes), with an explicit envelope.
 *
 * - State: a Checkpoint on this machine (commands/forward.ts says where), under the source path as
 *   for every sink: the source UIDVALIDITY and the ids forwarded, and per id the relay's reply to
 *   DATA and the message's fingerprint (`sent`). `known` is those ids while the UIDVALIDITY holds.
 * - Sending differs from the archive sinks' transactions: a relay that answered 250 has taken
 *   responsibility for the message (RFC 5321 §4.1.1.4 / §6.1) and nothing can take it back, so
 *   `tx.write` sends at once and records the id with the reply durably (one fdatasync'd line in the
 *   state's journal, Checkpoint.recordSent: not a rewrite of the whole state) before it resolves;
 *   `commit` folds the journal into the state file, `abort` has nothing to undo. Messages are sent
 *   one at a time, also when the pipeline fetches several batches at once.
 * - At-least-once window: a run killed after the relay's 250 and before its journal line was
 *   written forwards that message again on the next run. That is at most one message
 *   per crash: the one in flight. A run killed before the 250 leaves the message unrecorded, and
 *   the relay has not accepted it (RFC 5321 §4.1.1.4: no 250, no responsibility). Nothing is lost.
 *   SMTP's own window (RFC 1047) is the same message: a connection lost after the final "." and
 *   before the reply leaves it unrecorded, and it is sent again although the relay may have kept it.
 * - Replies (transport.ts): 4xx is retried with backoff by the one retry policy (domain/retry.ts:
 *   `retries` attempts, `retryBaseMs` doubling); when it persists the message is left for the next
 *   run and reported through `tx.refused()` (skipped, exit 3), as the IMAP target reports what it
 *   refuses. 5xx skips the message with the relay's reason, also through `tx.refused()`, not
 *   recorded: a rerun tries it again (a relay that refused every message, e.g. for a wrong --rcpt,
 *   must not lose them all). AUTH refused, TLS and connection failures throw (auth: exit 4;
 *   network/TLS: exit 5; a dropped connection is retried by the pipeline, batch and all).
 * - After a UIDVALIDITY change (or a re-match interrupted), `needsRematch` is true and
 *   `fingerprints()` gives the recorded fingerprints, so the pipeline matches the source's messages
 *   by header and size and nothing is forwarded twice; `rebase` moves the records to the new ids.
 */
export interface SmtpSinkOptions {
  /** Already rate limited (rate.ts), when asked. */
  sender: SmtpSender;
  envelope: SmtpEnvelope;
  checkpoint: Checkpoint;
  /** e.g. `smtps://me@smtp.example.org:465 -> me@new.example.org`, for messages and the summary. */
  name: string;
  retries: number;
  retryBaseMs: number;
  signal: AbortSignal;
  log: Logger;
}

/** A relay's 4xx for one message: retried here, then left for the next run. */
class Deferred extends MailferryError {
  constructor(readonly reply: string) {
    super('network', `relay said "${reply}"`, { retryable: true });
  }
}

export class SmtpSink implements Sink {
  forwarded = 0;
  /** One message at a time: the at-least-once window stays at one message. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly opts: SmtpSinkOptions) {}

  get name(): string {
    return this.opts.name;
  }

  open(mailbox: MailboxInfo): Promise<SinkFolder> {
    // A Gmail label folder: its messages are sent with the labelled folder (All Mail), once.
    if (mailbox.label !== undefined) return Promise.resolve(labelFolder(mailbox));
    return Promise.resolve(new SmtpFolder(this, mailbox));
  }

  /** Run `fn` after every earlier one has finished. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.opts.checkpoint.save().catch(() => undefined);
    this.opts.sender.close();
  }
}

class SmtpFolder implements SinkFolder {
  readonly known: Set<string>;
  needsRematch: boolean;

  constructor(
    private readonly sink: SmtpSink,
    readonly mailbox: MailboxInfo,
  ) {
    const cp = this.checkpoint.folder(mailbox.path);
    const valid = cp !== undefined && !cp.rematching && cp.uidValidity === mailbox.uidValidity?.toString();
    this.known = valid ? new Set(cp.ids) : new Set();
    this.needsRematch = cp !== undefined && !valid && (cp.ids.size > 0 || cp.rematching === true);
    // A \Noselect container holds nothing to forward: no record for it.
    if (!mailbox.noSelect && (cp === undefined || (!valid && !this.needsRematch))) this.record(mailbox.uidValidity, new Map());
  }

  private get checkpoint(): Checkpoint {
    return this.sink.opts.checkpoint;
  }

  /** Replace this folder's record (in memory). */
  private record(uidValidity: bigint | undefined, sent: Map<string, SentRecord>): void {
    this.checkpoint.update(this.mailbox.path, (f: FolderCheckpoint) => {
      if (uidValidity === undefined) delete f.uidValidity;
      else f.uidValidity = uidValidity.toString();
      delete f.rematching;
      f.ids = new Set(sent.keys());
      f.sent = sent;
    });
  }

  async *fingerprints(): AsyncIterable<Fingerprint> {
    const sent = this.checkpoint.folder(this.mailbox.path)?.sent ?? new Map<string, SentRecord>();
    for (const [id, r] of sent) yield { key: r.key, ref: id };
  }

  async rebase(uidValidity: bigint | undefined, matches: readonly Match[]): Promise<void> {
    const old = this.checkpoint.folder(this.mailbox.path)?.sent ?? new Map<string, SentRecord>();
    const sent = new Map<string, SentRecord>();
    for (const m of matches) {
      const r = old.get(m.ref);
      if (r !== undefined) sent.set(m.id, r);
    }
    this.record(uidValidity, sent);
    await this.checkpoint.save();
    this.known.clear();
    for (const id of sent.keys()) this.known.add(id);
    this.needsRematch = false;
  }

  begin(): Promise<Tx> {
    if (this.mailbox.noSelect) return Promise.reject(new MailferryError('mailbox', `folder "${this.mailbox.path}" is \\Noselect; it holds no messages`));
    const refused: Refusal[] = [];
    return Promise.resolve({
      write: (meta: MessageMeta, body: Buffer | Readable) => this.forward(meta, body, refused),
      commit: () => this.checkpoint.save(),
      abort: () => Promise.resolve(),
      refused: () => refused,
    });
  }

  private async forward(meta: MessageMeta, body: Buffer | Readable, refused: Refusal[]): Promise<void> {
    const raw = await collect(body, meta, this.mailbox.path);
    await this.sink.serial(async () => {
      // A batch retried after a dropped connection may bring a message already accepted.
      if (this.known.has(meta.id)) return;
      const reply = await this.deliver(meta, raw);
      if (!reply.accepted) {
        refused.push({ id: meta.id, reason: reply.reason });
        return;
      }
      const key = fingerprintKey(toLf(headerBlock(raw)), raw.length);
      // One journal line, not a rewrite of the whole state (which grows with every message).
      await this.checkpoint.recordSent(this.mailbox.path, meta.id, { reply: reply.text, key });
      this.known.add(meta.id);
      this.sink.forwarded++;
    });
  }

  /** Send, with retries of 4xx: the relay's 250 text, or why the message was not forwarded. */
  private async deliver(meta: MessageMeta, raw: Buffer): Promise<{ accepted: true; text: string } | { accepted: false; reason: string }> {
    const o = this.sink.opts;
    const interrupted = (): MailferryError => new MailferryError('interrupted', 'interrupted; the state is consistent, rerun to resume');
    let reason: string;
    try {
      const reply = await withRetry(
        `${this.mailbox.path} message ${meta.id}`,
        async () => {
          if (o.signal.aborted) throw interrupted();
          const r = await o.sender.send(o.envelope, raw);
          if (!r.accepted && !r.permanent) throw new Deferred(r.text);
          return r;
        },
        // Only the relay's 4xx: a dropped connection goes up to the pipeline's retry of the batch.
        { attempts: o.retries, baseMs: o.retryBaseMs, log: o.log, signal: o.signal, retryOn: (e) => e instanceof Deferred },
      );
      if (reply.accepted) return reply;
      reason = `relay refused it: ${reply.text}`;
    } catch (e: unknown) {
      if (!(e instanceof Deferred)) throw e;
      if (o.signal.aborted) throw interrupted();
      reason = `relay deferred it ${o.retries} times (${e.reply}); a rerun tries again`;
    }
    // Reported with the other skipped messages at the end of the run (and in the summary).
    o.log.info(`${this.mailbox.path} message ${meta.id}: ${reason}`);
    return { accepted: false, reason };
  }
}
