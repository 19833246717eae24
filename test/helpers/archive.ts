import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { MailboxInfo, MessageMeta } from '../../src/domain/message.js';
import type { Source } from '../../src/sources/source.js';
import { flagsOfInfo, parseName } from '../../src/formats/maildir-name.js';
import { readMbox } from '../../src/formats/mbox-reader.js';
import { Checkpoint } from '../../src/state/checkpoint.js';
import { STATE_FILE } from '../../src/commands/archive.js';

/** What an archive folder holds, read back independently of the sink that wrote it. */
export interface ArchivedMessage {
  uid?: string;
  flags: Set<string>;
  date?: Date;
  body: Buffer;
}

async function keywordsOf(dir: string): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  const text = await readFile(join(dir, 'dovecot-keywords'), 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const m = /^(\d+) (.+)$/.exec(line);
    if (m) map.set(String.fromCharCode(0x61 + Number(m[1])), m[2] as string);
  }
  return map;
}

export async function readMaildirFolder(dir: string): Promise<ArchivedMessage[]> {
  const kw = await keywordsOf(dir);
  const out: ArchivedMessage[] = [];
  for (const sub of ['new', 'cur']) {
    for (const name of (await readdir(join(dir, sub)).catch(() => [] as string[])).sort()) {
      const p = parseName(name);
      const path = join(dir, sub, name);
      const body = await readFile(path);
      if (p.size !== undefined && p.size !== body.length) throw new Error(`S= ${p.size} != file size ${body.length} for ${name}`);
      out.push({
        ...(p.uid === undefined ? {} : { uid: p.uid }),
        flags: flagsOfInfo(p.info, (l) => kw.get(l)),
        date: (await stat(path)).mtime,
        body,
      });
    }
  }
  return out;
}

export async function readMboxFile(file: string, archiveRoot: string, folderPath: string, source: string): Promise<ArchivedMessage[]> {
  const cp = await Checkpoint.load(join(archiveRoot, STATE_FILE), source);
  const noEol = new Set(cp.folder(folderPath)?.noEol ?? []);
  const out: ArchivedMessage[] = [];
  for await (const e of readMbox(file, noEol)) {
    const date = new Date(`${e.fromLine.split(' ').slice(2).join(' ')} UTC`);
    out.push({ flags: e.flags, date, body: e.body });
  }
  return out;
}

/**
 * Folder -> its message bodies (sorted), read back through an archive's own Source (what restore
 * and verify read); `key` names a folder in the map (default its path), never two alike.
 */
export async function readBack(source: Source, key = (m: MailboxInfo): string => m.path): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const m of await source.mailboxes()) {
    if (m.noSelect === true) continue;
    const k = key(m);
    assert.ok(!out.has(k), `${k} listed twice`);
    const sel = await source.select(m);
    const metas: MessageMeta[] = [];
    for await (const meta of source.list(sel.mailbox, () => true)) metas.push(meta);
    const bodies: string[] = [];
    for await (const f of source.fetch(metas, new AbortController().signal)) {
      assert.ok(Buffer.isBuffer(f.body));
      bodies.push(f.body.toString('utf8'));
    }
    out.set(k, bodies.sort());
  }
  await source.close();
  return out;
}
