import { writeStdout } from '../log/redact.js';
import { credentialsFor } from '../auth/login.js';
import { loadFoldersConfig, type FoldersConfig } from '../config/folders.js';
import { rawFlags } from '../config/flags.js';
import type { MailboxInfo } from '../domain/message.js';
import { folderFilter } from '../pipeline/folders.js';
import type { FolderStatus, Source } from '../sources/source.js';
import type { Command, CommandDeps, Output } from './deps.js';
import { accountSource } from './sources.js';

/**
 * `mailferry folders`: every folder of an account with its message count and size, its
 * special-use role, and whether a backup with the same flags would leave it out, and why (like
 * `mbsync -l` and `imapsync --justfolders`). Reads only: IMAP `STATUS (MESSAGES SIZE)` where the
 * source offers `status()` and the server STATUS=SIZE, else the sizes the message listing gives.
 */
export interface FolderLine {
  path: string;
  /** A container without messages of its own (\Noselect). */
  container?: true;
  messages?: number;
  bytes?: number;
  specialUse?: string;
  /** Why a backup with these flags leaves it out. */
  skipped?: string;
}

export interface FoldersResult {
  source: string;
  folders: FolderLine[];
}

export async function folders(cfg: FoldersConfig, deps: CommandDeps): Promise<FoldersResult> {
  const credentials = credentialsFor(cfg.auth, cfg.from);
  const source = accountSource(
    { endpoint: cfg.from, credentials, ...(cfg.ca === undefined ? {} : { ca: cfg.ca }), insecure: cfg.insecure, connections: cfg.connections },
    { streamThreshold: cfg.streamThreshold, log: deps.log, debug: deps.debug ?? false },
  );
  await credentials.get();
  try {
    const byProfile = folderFilter([], cfg.profileSkip);
    const byUser = folderFilter(cfg.include, cfg.exclude);
    const out: FolderLine[] = [];
    for (const m of await source.mailboxes()) {
      if (deps.signal.aborted) break;
      const skipped = !byProfile(m)
        ? `the ${cfg.profile ?? ''} profile skips it: it repeats messages kept in other folders (--all-folders includes it)`
        : !byUser(m)
          ? 'left out by --include/--exclude'
          : undefined;
      const figures = m.noSelect === true ? undefined : await figuresOf(source, m);
      out.push({
        path: m.path,
        ...(m.noSelect === true ? { container: true as const } : {}),
        ...(figures === undefined ? {} : { messages: figures.messages, bytes: figures.bytes ?? 0 }),
        ...(m.specialUse === undefined ? {} : { specialUse: m.specialUse }),
        ...(skipped === undefined ? {} : { skipped }),
      });
    }
    return { source: source.identity, folders: out };
  } finally {
    await source.close();
  }
}

/** Count and size: from `status()` when it knows both, else by listing the messages' sizes. */
async function figuresOf(source: Source, m: MailboxInfo): Promise<FolderStatus> {
  const s = await source.status?.(m);
  if (s?.bytes !== undefined) return s;
  const selected = await source.select(m);
  let messages = 0;
  let bytes = 0;
  for await (const meta of source.list(selected.mailbox, () => true)) {
    messages++;
    bytes += meta.size ?? 0;
  }
  return { messages, bytes };
}

/** A table on stdout (one line per folder), or one JSON object with --json. */
export function printFolders(r: FoldersResult, o: Output): number {
  if (o.json) {
    writeStdout(JSON.stringify({ type: 'folders', source: r.source, folders: r.folders }));
    return 0;
  }
  const width = Math.max(6, ...r.folders.map((f) => [...f.path].length));
  const lines = r.folders.map((f) => {
    const figures = f.container === true ? '(container)'.padStart(26) : `${String(f.messages ?? 0).padStart(8)} messages ${((f.bytes ?? 0) / 1e6).toFixed(2).padStart(9)} MB`;
    const role = f.specialUse === undefined ? '' : `  ${f.specialUse}`;
    const skipped = f.skipped === undefined ? '' : `  skipped: ${f.skipped}`;
    return `${f.path}${' '.repeat(width - [...f.path].length)}  ${figures}${role}${skipped}`;
  });
  const total = r.folders.reduce((n, f) => ({ messages: n.messages + (f.messages ?? 0), bytes: n.bytes + (f.bytes ?? 0) }), { messages: 0, bytes: 0 });
  writeStdout([`${r.source}: ${r.folders.length} folders, ${total.messages} messages, ${(total.bytes / 1e6).toFixed(2)} MB`, ...lines].join('\n'));
  return 0;
}

export const FOLDERS: Command<FoldersConfig, FoldersResult> = {
  load: (args) => loadFoldersConfig(rawFlags(args)),
  run: folders,
  print: printFolders,
};
