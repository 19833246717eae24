import type { MailboxInfo } from '../domain/message.js';

/**
 * --include / --exclude: shell-style patterns on the Unicode folder path ("*" any run of characters
 * including the delimiter, "%" any run without it, "?" one character), case-sensitive except INBOX.
 * A folder is kept when it matches an include (or none is given) and no exclude. Parents of kept
 * folders stay, as containers, so the hierarchy is intact. An include naming a container that holds
 * no mail of its own (\Noselect, or not listed at all) takes everything below it: `--include Archiv`
 * takes `Archiv/2023` (what a user naming a parent means); one naming a folder that holds mail
 * means that folder only, so `--include INBOX` stays the inbox alone on servers that keep every
 * folder under INBOX.
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
  return include.filter((pattern) => !all.some((m) => !m.noSelect && folderFilter(withSubtrees(all, [pattern]), [])(m)));
}

/** The folders --include/--exclude keep (see folderFilter), and the includes that matched nothing. */
export function chooseFolders(all: readonly MailboxInfo[], include: readonly string[], exclude: readonly string[]): { mailboxes: MailboxInfo[]; unmatched: string[] } {
  return { mailboxes: selectMailboxes(all, folderFilter(withSubtrees(all, include), exclude)), unmatched: unmatchedIncludes(all, include) };
}

/** A plain include naming a container without mail of its own also takes its subtree (`A` -> `A/*`). */
function withSubtrees(all: readonly MailboxInfo[], include: readonly string[]): string[] {
  return include.flatMap((pattern) => {
    if (/[*%?]/.test(pattern) || all.some((m) => m.path === pattern && !m.noSelect)) return [pattern];
    const d = all.find((m) => m.delimiter !== '' && m.path.startsWith(pattern + m.delimiter))?.delimiter;
    return d === undefined ? [pattern] : [pattern, `${pattern}${d}*`];
  });
}

/**
 * What to tell the user about an include pattern that matched nothing: the folder names closest to
 * it (same name in another case, or a few letters apart), else the top-level folders there are.
 */
export function includeHint(all: readonly MailboxInfo[], pattern: string): string {
  const paths = all.filter((m) => !m.noSelect || all.some((c) => c.delimiter !== '' && c.path.startsWith(m.path + c.delimiter))).map((m) => m.path);
  const want = pattern.toLowerCase();
  const near = paths
    .map((p) => ({ p, d: Math.min(distance(p.toLowerCase(), want), distance(leaf(all, p).toLowerCase(), want)) }))
    .filter((x) => x.d <= (want.length < 4 ? 1 : Math.max(2, Math.floor(want.length / 3))))
    .sort((a, b) => a.d - b.d || a.p.length - b.p.length)
    .slice(0, 3)
    .map((x) => `"${x.p}"`);
  if (near.length > 0) return ` (did you mean ${near.join(' or ')}?)`;
  const top = paths.filter((p) => !all.some((m) => m.path === p && m.delimiter !== '' && p.includes(m.delimiter)));
  const shown = top.slice(0, 8).join(', ');
  return top.length === 0 ? '' : ` (top-level folders: ${shown}${top.length > 8 ? `, … ${top.length} in all` : ''})`;
}

function leaf(all: readonly MailboxInfo[], path: string): string {
  const d = all.find((m) => m.path === path)?.delimiter ?? '';
  return d === '' ? path : (path.split(d).pop() ?? path);
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_v, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
