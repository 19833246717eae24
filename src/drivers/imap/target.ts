import type { Credentials } from '../../auth/credentials.js';
import { MailferryError } from '../../domain/errors.js';
import type { MailboxInfo } from '../../domain/message.js';
import type { RemoteEndpoint } from '../../endpoints/url.js';
import type { Logger } from '../../log/logger.js';
import { ImapPool, LIST_BYTES, type Conn } from './pool.js';
import type { Checkpoint } from '../../state/checkpoint.js';
import { canMultiAppend } from './multi-append.js';
import { mapFolder, sourceRole, targetRoles, type ListedFolder, type MapRule, type Mapped, type Role } from './folder-map.js';
import { ImapFolder, NoselectFolder } from './target-folder.js';
import { targetKey, type TargetSink } from './target-common.js';
import type { Sink, SinkFolder } from '../../sinks/sink.js';
import { labelFolder } from '../labels.js';
import { GMAIL_EXTENSION } from './gmail.js';
import { Threads } from './threads.js';

export { targetKey };

/**
 * IMAP target (migrate, restore): each message is APPENDed to the target server with its flags
 * (without \Recent, which only the server sets; keywords kept) and its INTERNALDATE.
 *
 * - `open(mailbox)` maps the source path to a target path (folder-map.ts: `--map` rules, then the
 *   special-use role found in the target's LIST, then the source name with the target's hierarchy
 *   delimiter; a component that contains that delimiter cannot be represented: error `mailbox`;
 *   two source folders never share a target folder), CREATEs and SUBSCRIBEs
 *   the folder when missing; a \Noselect source mailbox creates nothing itself: CREATE of a child
 *   makes its parents exist (RFC 3501 6.3.3), and an empty container has no meaning on the target.
 * - The checkpoint (the caller decides where it lives) keeps, under the source path, the source
 *   UIDVALIDITY and the source ids appended (as the other sinks do), and under `targetKey(path)`
 *   the target folder's UIDVALIDITY and the target UIDs we know of (from APPENDUID, RFC 4315).
 *   `known` is the source ids when both still hold. `needsRematch` is true when the target folder
 *   holds a message the checkpoint does not account for (the state was lost, the source
 *   UIDVALIDITY changed, the target was recreated, or a run died between an APPEND and its
 *   commit): the pipeline then matches `fingerprints()` (header block + RFC822.SIZE of every target
 *   message, ref = target UID) against the source, so nothing is appended twice. When only the
 *   target holds more (both UIDVALIDITYs unchanged), the records whose target UID is still there
 *   stay known and are not matched again.
 * - Writing: the server makes a message durable when it answers OK to its APPEND, and nothing
 *   appended can be taken back. A literal needs its exact length first: a Readable body (a message
 *   over the source's stream threshold) is spooled to a temporary file (literal.ts), bounded by the
 *   message's size, and APPENDed alone, after the group gathered so far; literals are streamed onto
 *   the socket, never compiled into one command buffer (multi-append.ts). When the target offers
 *   MULTIAPPEND (RFC 3502),
 *   `tx.write` gathers messages and sends them in groups of up to GROUP_BYTES / GROUP_MESSAGES,
 *   one transaction each on the server (so memory is one group per transaction), the last group
 *   at `commit()`; without it (or `multiAppend: false`) each `tx.write` APPENDs at once. A group
 *   the server refuses (all or nothing) is sent again one message at a time, so only the message
 *   at fault is refused: it is not recorded, and `tx.refused()` names it (the pipeline reports it
 *   as skipped); a full target (OVERQUOTA) is a `quota` error, and what was appended before it is
 *   still recorded at `commit()`. `commit()` records the ids in the checkpoint and saves it.
 *   `abort()` records nothing: messages already appended stay on the target, are skipped if
 *   written again through the same folder in this run, and are found by `fingerprints()` after a
 *   crash.
 * - Connections: up to `connections` logged-in clients, each with an 'error' listener (imapflow
 *   #302), `doSTARTTLS: true` for STARTTLS mode, certificates verified unless `insecure`.
 * - Without UIDPLUS, commit records every UID the target folder holds (UID SEARCH ALL).
 * - Flags: the checkpoint also keeps, per source id, its target UID (APPENDUID, or the UID a
 *   re-match found) and the flags last written (synced.ts). `syncFlags` STOREs on the target what
 *   changed on the source since then (+FLAGS/-FLAGS, so a flag set only on the target stays); a
 *   message without a record (re-matched after a crash or a lost state) is compared with the
 *   target's current FLAGS instead. Without a known target UID (no UIDPLUS) flags are not carried.
 * - Gmail as the target (X-GM-EXT-1) of a Gmail-mode source: a label folder is not written (a
 *   user label is created), and each message of the labelled folder (All Mail) is appended once
 *   and given its labels with UID STORE +X-GM-LABELS before its commit records it (labels too);
 *   a label changed on the source since is carried on rerun by `syncFlags` (target-labels.ts).
 */
export interface ImapAppendSinkOptions {
  endpoint: RemoteEndpoint;
  credentials: Credentials;
  ca?: Buffer;
  insecure: boolean;
  connections: number;
  checkpoint: Checkpoint;
  log: Logger;
  debug: boolean;
  /** `--map OLD=NEW` rules, applied before the role mapping. */
  map?: readonly MapRule[];
  /** Use MULTIAPPEND when the target offers it (default true). */
  multiAppend?: boolean;
  /**
   * The largest message the target takes (its provider profile's `limits.maxAppendBytes`), for a
   * server that does not announce APPENDLIMIT (RFC 7889). A message over it, or over the announced
   * APPENDLIMIT, whichever is smaller (`appendLimit`), is refused (`message`) before it is queued,
   * spooled or sent, so it never fails a MULTIAPPEND group.
   */
  maxAppendBytes?: number;
  /** SPECIAL-USE flag -> target folder, from the target's provider profile (`folders.roles`), for a target that flags none. */
  roles?: ReadonlyMap<string, string>;
}

export class ImapAppendSink implements Sink, TargetSink {
  readonly name: string;
  private readonly pool: ImapPool;
  /** The target's hierarchy delimiter; null for a flat namespace. */
  private delimiter: string | null | undefined;
  /** The target takes MULTIAPPEND (and we may use it). */
  multi = false;
  /** The target announces X-GM-EXT-1 (Gmail): see target-labels.ts. */
  gmail = false;
  /** Gmail to Gmail: per source conversation, the threads Gmail made of it on the target (threads.ts). */
  readonly threads = new Threads();
  /** Role -> target path, from one LIST of the target. */
  private roles: Promise<Map<Role, string>> | undefined;
  private listing: Promise<ListedFolder[]> | undefined;
  /** Source path -> its mapping, decided (and reported) once. */
  private readonly decided = new Map<string, Mapped>();
  /** Target path -> the source path that writes into it. */
  private readonly claimed = new Map<string, string>();
  /** The smallest APPENDLIMIT (RFC 7889) a connection of the target announced. */
  private announcedLimit: number | undefined;

  constructor(private readonly opts: ImapAppendSinkOptions) {
    const e = opts.endpoint;
    this.name = `${e.tls === 'tls' ? 'imaps' : 'imap'}://${e.user}@${e.host}:${e.port}`;
    this.pool = new ImapPool({
      ...opts,
      size: opts.connections,
      onConnect: (client) => {
        if (this.delimiter === undefined) this.delimiter = client.namespace?.delimiter ?? '/';
        this.multi = opts.multiAppend !== false && canMultiAppend(client);
        this.gmail = client.capabilities.has(GMAIL_EXTENSION);
      },
    });
  }

  get where(): string {
    return this.pool.where;
  }

  /** Run `fn` on a pooled connection; errors become MailferryError (`what` names a NO); `bytes` as ImapPool.withConn's. */
  withConn<T>(fn: (c: Conn) => Promise<T>, what?: string, bytes?: number): Promise<T> {
    return this.pool.withConn(
      (c) => {
        this.noteAppendLimit(c.client);
        return fn(c);
      },
      what,
      undefined,
      bytes,
    );
  }

  /** Every use of a connection notes the APPENDLIMIT it announces (checkSize reads it as `appendLimit`). */
  private noteAppendLimit(client: Conn['client']): void {
    const announced = client.capabilities.get('APPENDLIMIT');
    if (typeof announced === 'number' && announced > 0) this.announcedLimit = Math.min(announced, this.announcedLimit ?? announced);
  }

  get checkpoint(): Checkpoint {
    return this.opts.checkpoint;
  }

  /** The largest message to send, and who says so (see ImapAppendSinkOptions.maxAppendBytes); none when neither does. */
  get appendLimit(): { bytes: number; by: 'server' | 'profile' } | undefined {
    const profile = this.opts.maxAppendBytes;
    const server = this.announcedLimit;
    if (server !== undefined && (profile === undefined || server <= profile)) return { bytes: server, by: 'server' };
    return profile === undefined ? undefined : { bytes: profile, by: 'profile' };
  }

  /** The target path of a source mailbox (decided once per source path, and reported). */
  async targetPath(mailbox: Pick<MailboxInfo, 'path' | 'delimiter' | 'specialUse'>): Promise<string> {
    const done = this.decided.get(mailbox.path);
    if (done !== undefined) return done.path;
    if (this.delimiter === undefined) await this.withConn(async () => undefined);
    const rules = this.opts.map ?? [];
    const roles = sourceRole(mailbox) === undefined ? new Map<Role, string>() : await this.targetRoles();
    const ctx = { rules, delimiter: this.delimiter ?? null, roles, where: this.where };
    const again = this.decided.get(mailbox.path);
    if (again !== undefined) return again.path;
    let m = mapFolder(mailbox, ctx);
    const log = this.opts.log;
    const owner = this.claimed.get(m.path);
    if (owner !== undefined && owner !== mailbox.path && m.reason === 'role') {
      log.warn(`folder "${mailbox.path}" (${m.role ?? ''}): target folder "${m.path}" already receives "${owner}"; keeping the source name`);
      m = mapFolder({ path: mailbox.path, delimiter: mailbox.delimiter }, { ...ctx, rules: [] });
    }
    const other = this.claimed.get(m.path);
    if (other !== undefined && other !== mailbox.path) {
      throw new MailferryError('mailbox', `folder "${mailbox.path}" would go to target folder "${m.path}", which already receives "${other}"`);
    }
    this.claimed.set(m.path, mailbox.path);
    this.decided.set(mailbox.path, m);
    if (m.reason === 'map') log.info(`folder "${mailbox.path}" -> "${m.path}" (--map)`);
    else if (m.reason === 'role') log.info(`folder "${mailbox.path}" -> "${m.path}" (${m.role ?? ''} on the target)`);
    else if (m.role !== undefined) log.info(`folder "${mailbox.path}" -> "${m.path}" (the target has no ${m.role} folder; source name kept)`);
    else if (m.path !== mailbox.path) log.debug(`folder "${mailbox.path}" -> "${m.path}"`);
    return m.path;
  }

  /** The target's folders as they were when first listed (before this run created any). */
  private listed(): Promise<ListedFolder[]> {
    this.listing ??= this.withConn(async (c) => {
      const listed = await c.client.list();
      return listed.map((l) => ({
        path: l.path,
        ...(l.specialUse === undefined ? {} : { specialUse: l.specialUse }),
        noSelect: l.flags.has('\\Noselect') || l.flags.has('\\NonExistent'),
      }));
    }, 'cannot list folders', LIST_BYTES);
    return this.listing;
  }

  /** The target's special-use folders (by flag, else by well-known name), listed once. */
  private async targetRoles(): Promise<Map<Role, string>> {
    const listed = await this.listed();
    this.roles ??= Promise.resolve(targetRoles(listed, this.delimiter ?? null, this.opts.roles));
    return this.roles;
  }

  /** For a dry run: where a source folder would go, and whether that folder exists already. */
  async describeTarget(mailbox: MailboxInfo): Promise<{ path: string; exists: boolean }> {
    const path = await this.targetPath(mailbox);
    return { path, exists: (await this.listed()).some((l) => l.path === path && l.noSelect !== true) };
  }

  /** `--map` rules that named no source folder opened so far. */
  unusedMapRules(): MapRule[] {
    const used = new Set([...this.decided.values()].map((m) => m.rule));
    return (this.opts.map ?? []).filter((r) => !used.has(r));
  }

  /** Whether the target is Gmail (one connection made to ask). */
  async isGmail(): Promise<boolean> {
    await this.withConn(async () => undefined);
    return this.gmail;
  }

  async open(mailbox: MailboxInfo): Promise<SinkFolder> {
    const path = await this.targetPath(mailbox);
    // A Gmail source's label folder: its messages are appended once, to All Mail, and labelled
    // there; a user label is created first (CREATE makes a label in Gmail), a system one exists.
    if (mailbox.label !== undefined) {
      if (this.gmail && !mailbox.label.startsWith('\\')) {
        await this.withConn(async (c) => {
          const r = await c.client.mailboxCreate(path);
          if (r.created) await c.client.mailboxSubscribe(path);
        }, `cannot create label "${path}"`);
      }
      return labelFolder(mailbox);
    }
    // CREATE "a/" makes a selectable "a" on Dovecot's Maildir++; children create their parents.
    if (mailbox.noSelect) return new NoselectFolder(mailbox);
    await this.withConn(async (c) => {
      const r = await c.client.mailboxCreate(path);
      if (r.created) await c.client.mailboxSubscribe(path);
    }, `cannot create folder "${path}"`);
    const folder = new ImapFolder(this, mailbox, path, this.opts.log);
    await folder.init();
    return folder;
  }

  async close(): Promise<void> {
    if (this.decided.size > 0) {
      for (const r of this.unusedMapRules()) this.opts.log.warn(`--map ${r.from}=${r.to}: no such source folder`);
    }
    await this.opts.checkpoint.save().catch(() => undefined);
    await this.pool.close();
  }
}
