import { join } from 'node:path';
import { errnoCode } from '../../domain/errors.js';
import { writeFileAtomic } from '../../state/atomic.js';
import { readNoFollow } from '../../state/no-follow.js';

/**
 * Dovecot's `dovecot-keywords` file: one "N name" line per keyword; letter 'a' + N stands for the
 * keyword in a Maildir file name's info part. Only 26 letters exist: a keyword beyond them cannot be
 * kept in the file name and is reported by the caller.
 */
export class KeywordTable {
  private readonly byName = new Map<string, number>();
  private readonly byIndex = new Map<number, string>();
  private changed = false;

  private constructor(private readonly file: string) {}

  static async load(dir: string): Promise<KeywordTable> {
    const t = new KeywordTable(join(dir, 'dovecot-keywords'));
    let text = '';
    try {
      text = (await readNoFollow(t.file)).toString('utf8');
    } catch (e: unknown) {
      if (errnoCode(e) !== 'ENOENT') throw e;
    }
    for (const line of text.split('\n')) {
      const m = /^(\d+) (.+)$/.exec(line);
      if (m && m[1] !== undefined && m[2] !== undefined) {
        const n = Number(m[1]);
        if (n < 26) {
          t.byName.set(m[2], n);
          t.byIndex.set(n, m[2]);
        }
      }
    }
    return t;
  }

  /** The letter for a keyword, assigning a free one if needed; undefined when all 26 are taken. */
  letter(keyword: string): string | undefined {
    let n = this.byName.get(keyword);
    if (n === undefined) {
      for (let i = 0; i < 26; i++) {
        if (!this.byIndex.has(i)) {
          n = i;
          break;
        }
      }
      if (n === undefined) return undefined;
      this.byName.set(keyword, n);
      this.byIndex.set(n, keyword);
      this.changed = true;
    }
    return String.fromCharCode(0x61 + n);
  }

  keyword(letter: string): string | undefined {
    return this.byIndex.get(letter.charCodeAt(0) - 0x61);
  }

  /** Persist new assignments; must run before a file name using them is renamed into place. */
  async save(): Promise<void> {
    if (!this.changed) return;
    this.changed = false;
    const lines = [...this.byIndex.entries()].sort(([a], [b]) => a - b).map(([n, k]) => `${n} ${k}\n`);
    await writeFileAtomic(this.file, lines.join(''), 0o600);
  }
}
