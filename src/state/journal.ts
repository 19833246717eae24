import { dirname } from 'node:path';
import { errnoCode } from '../domain/errors.js';
import { fsyncDir } from './atomic.js';
import { openNoFollow, readNoFollow } from './no-follow.js';

/**
 * An append-only journal beside a state file (`<state>.journal`), for records that must be durable
 * one at a time (SMTP forward: a message counts as sent once the relay said 250) without rewriting
 * the whole state file for each, which costs O(state size) per message.
 *
 * - `append(line)` writes one JSON line and fdatasyncs it (the file's first creation also fsyncs
 *   the directory); a record is durable when it resolves.
 * - `read()` returns the complete lines; a torn last line (a crash mid-append) is dropped: its
 *   record was never acknowledged.
 * - `clear()` empties the journal once the state file holds everything it said. Replaying a line
 *   the state already holds must be harmless (records are set-like), so a crash between the state
 *   write and `clear()` loses nothing.
 */
export class Journal {
  private created = false;

  constructor(readonly path: string) {}

  async append(line: string): Promise<void> {
    const fh = await openNoFollow(this.path, 'a', 0o600);
    try {
      await fh.write(`${line}\n`);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    if (!this.created) {
      this.created = true;
      await fsyncDir(dirname(this.path));
    }
  }

  async read(): Promise<unknown[]> {
    let text: string;
    try {
      text = (await readNoFollow(this.path)).toString('utf8');
    } catch (e: unknown) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw e;
    }
    this.created = true;
    const lines = text.split('\n');
    lines.pop(); // after the last '\n': empty, or a torn line
    const out: unknown[] = [];
    for (const l of lines) {
      try {
        out.push(JSON.parse(l));
      } catch {
        // A line cut short and then followed by more (a crash, then appends): not a record.
      }
    }
    return out;
  }

  async clear(): Promise<void> {
    if (!this.created) return;
    try {
      const fh = await openNoFollow(this.path, 'r+');
      await fh.truncate(0).finally(() => fh.close());
    } catch (e: unknown) {
      if (errnoCode(e) !== 'ENOENT') throw e;
    }
  }
}
