/**
 * What the server holds (per folder: message count and RFC822.SIZE sum, asked over IMAP) and what
 * an archive holds (per folder: files in cur/ + new/ of a Maildir folder, `From ` separator lines
 * of an mbox file) or what a migrate target holds (asked over IMAP too). A benchmark run counts
 * only when the two agree.
 */
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { ImapFlow } from '../../src/drivers/imap/imapflow.js';
import { maildirFolderDir, mboxFolderFile } from '../../src/drivers/archive-paths.js';

export interface FolderTruth {
  path: string;
  delimiter: string;
  messages: number;
  /** sum of RFC822.SIZE, bytes */
  bytes: number;
}

export interface AccountTruth {
  folders: FolderTruth[];
  messages: number;
  bytes: number;
}

export interface ImapLogin {
  host: string;
  imapPort: number;
  user: string;
  password: string;
}

/** Folders and their counts and sizes, as the server says (plain IMAP on loopback). */
export async function serverTruth(login: ImapLogin): Promise<AccountTruth> {
  const client = new ImapFlow({
    host: login.host,
    port: login.imapPort,
    secure: false,
    doSTARTTLS: false,
    auth: { user: login.user, pass: login.password },
    logger: false,
    disableAutoIdle: true,
  });
  client.on('error', () => undefined);
  await client.connect();
  const folders: FolderTruth[] = [];
  try {
    for (const box of await client.list()) {
      if (box.flags.has('\\Noselect') || box.flags.has('\\NonExistent')) continue;
      const opened = await client.mailboxOpen(box.path, { readOnly: true });
      let bytes = 0;
      if (opened.exists > 0) {
        for await (const msg of client.fetch('1:*', { size: true })) bytes += msg.size ?? 0;
      }
      folders.push({ path: box.path, delimiter: box.delimiter ?? '/', messages: opened.exists, bytes });
    }
  } finally {
    await client.logout().catch(() => undefined);
    client.close();
  }
  folders.sort((a, b) => (a.path < b.path ? -1 : 1));
  return {
    folders,
    messages: folders.reduce((n, f) => n + f.messages, 0),
    bytes: folders.reduce((n, f) => n + f.bytes, 0),
  };
}

export type ArchiveFormat = 'maildir' | 'mbox';

async function countMaildir(dir: string): Promise<number> {
  let n = 0;
  for (const sub of ['cur', 'new']) {
    const names = await readdir(path.join(dir, sub)).catch(() => []);
    n += names.filter((f) => !f.startsWith('.')).length;
  }
  return n;
}

const FROM = Buffer.from('From ');

/** `From ` at the start of the file or after a LF; mboxrd quoting makes body lines `>From `. */
async function countMbox(file: string): Promise<number> {
  let n = 0;
  let carry = Buffer.alloc(0); // a line start too close to the end of a chunk to judge (< 5 bytes)
  let lineStart = true; // the next chunk begins a line
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      const b = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      carry = Buffer.alloc(0);
      let at: number = lineStart ? 0 : nextLineStart(b, 0);
      while (at !== -1 && at < b.length) {
        if (b.length - at < FROM.length) {
          carry = Buffer.from(b.subarray(at));
          break;
        }
        if (b.compare(FROM, 0, FROM.length, at, at + FROM.length) === 0) n++;
        at = nextLineStart(b, at);
      }
      lineStart = carry.length > 0 || at === b.length;
    }
  } catch (e: unknown) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  return n;
}

function nextLineStart(b: Buffer, from: number): number {
  const nl = b.indexOf(0x0a, from);
  return nl === -1 ? -1 : nl + 1;
}

/** Messages per folder in an archive written in the Maildir++ layout (ours and mbsync's) or as mbox. */
export async function archiveCounts(format: ArchiveFormat, root: string, folders: readonly FolderTruth[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const f of folders) {
    const box = { path: f.path, delimiter: f.delimiter };
    counts.set(f.path, format === 'maildir' ? await countMaildir(maildirFolderDir(root, 'maildir++', box)) : await countMbox(mboxFolderFile(root, box)));
  }
  return counts;
}

/** Throws, naming every folder that differs, unless `counts` (what `where` holds) has exactly the server's messages per folder. */
function compareCounts(what: string, where: string, truth: AccountTruth, counts: ReadonlyMap<string, number>, side: string): void {
  const wrong = truth.folders
    .filter((f) => counts.get(f.path) !== f.messages)
    .map((f) => `${f.path}: server ${f.messages}, ${side} ${counts.get(f.path) ?? 0}`);
  if (wrong.length > 0) throw new Error(`VERIFY FAILED for ${what} (${where}):\n  ${wrong.join('\n  ')}`);
}

/** Throws, naming every folder that differs, unless the archive holds exactly the server's messages. */
export async function verifyArchive(what: string, format: ArchiveFormat, root: string, truth: AccountTruth): Promise<void> {
  compareCounts(what, root, truth, await archiveCounts(format, root, truth.folders), 'archive');
}

/** The same for a copy on an IMAP server (a migrate target): messages per folder of `truth` there. */
export async function verifyServer(what: string, target: ImapLogin, truth: AccountTruth): Promise<void> {
  const got = await serverTruth(target);
  compareCounts(what, `${target.user} on the server`, truth, new Map(got.folders.map((f) => [f.path, f.messages])), 'target');
}
