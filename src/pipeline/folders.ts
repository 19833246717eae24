import type { MailboxInfo } from '../domain/message.js';

/**
 * --include / --exclude: shell-style patterns on the Unicode folder path ("*" any run of characters
 * including the delimiter, "%" any run without it, "?" one character), case-sensitive except INBOX.
 * A folder is kept when it matches an include (or none is given) and no exclude. Parents of kept
 * folders stay, as containers, so the hierarchy is intact.
 */
export function folderFilter(include: readonly string[], exclude: readonly string[]) {
  const inc = include.map(toRegExp);
  const exc = exclude.map(toRegExp);
  return (m: MailboxInfo): boolean => {
    const path = m.path.toUpperCase() === 'INBOX' ? 'INBOX' : m.path;
    const d = m.delimiter;
    if (inc.length > 0 && !inc.some((f) => f(path, d))) return false;
    return !exc.some((f) => f(path, d));
  };
}

function toRegExp(pattern: string): (path: string, delimiter: string) => boolean {
  return (path, delimiter) => {
    let re = '^';
    for (const ch of pattern) {
      if (ch === '*') re += '.*';
      else if (ch === '%') re += delimiter === '' ? '.*' : `[^${escape(delimiter)}]*`;
      else if (ch === '?') re += '.';
      else re += escape(ch);
    }
    return new RegExp(`${re}$`, 'u').test(path);
  };
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

export function selectMailboxes(all: readonly MailboxInfo[], keep: (m: MailboxInfo) => boolean): MailboxInfo[] {
  const kept = new Set(all.filter((m) => !m.noSelect && keep(m)).map((m) => m.path));
  const out: MailboxInfo[] = [];
  for (const m of all) {
    if (kept.has(m.path)) {
      out.push(m);
      continue;
    }
    // Keep a container (or an excluded parent, as a container only) when something below it is kept.
    const prefix = m.delimiter === '' ? null : m.path + m.delimiter;
    if (prefix !== null && [...kept].some((p) => p.startsWith(prefix))) out.push({ ...m, noSelect: true });
  }
  return out;
}

/** Include patterns that match no folder at all: most likely a typo the user wants to hear about. */
export function unmatchedIncludes(all: readonly MailboxInfo[], include: readonly string[]): string[] {
  return include.filter((pattern) => !all.some((m) => !m.noSelect && folderFilter([pattern], [])(m)));
}
