import { MailferryError } from '../../domain/errors.js';
import { pathComponents, type MailboxInfo } from '../../domain/message.js';

/**
 * Where a source folder goes on an IMAP target (pure functions; ImapAppendSink uses them):
 *
 * 1. `--map OLD=NEW`: OLD is the exact source path and NEW the target path, both written with "/"
 *    between components whatever the servers use; NEW is translated to the target's delimiter.
 *    A pattern `OLD/*=NEW/*` moves a subtree: OLD itself to NEW and OLD/x/y to NEW/x/y (`*` alone
 *    on the left is every folder, INBOX included; `*` alone on the right is the top level). An
 *    exact rule wins over a pattern, a longer pattern over a shorter one.
 * 2. A source folder with a special-use role (\Sent, \Drafts, \Trash, \Junk, \Archive: by its
 *    SPECIAL-USE flag, else by a well-known name, see sourceRole) goes to the target folder with
 *    the same role: from the target's LIST (RFC 6154 SPECIAL-USE) or, when the target announces
 *    none for that role, the folder its provider profile names for it, or a well-known name
 *    ("Sent Items", "Deleted Items", "Junk E-mail", ...).
 *    Only when the target has no such folder is the source name kept.
 * 3. Else the source path with its components joined by the target's delimiter.
 */

/** The roles that name a folder the user files mail in (\All and \Flagged are virtual views). */
export const MAPPED_ROLES = ['\\Sent', '\\Drafts', '\\Trash', '\\Junk', '\\Archive'] as const;
export type Role = (typeof MAPPED_ROLES)[number];

/** Well-known names of each role, lower case (Outlook/Exchange, Apple, Gmail-style, Courier). */
const ROLE_NAMES: Record<Role, readonly string[]> = {
  '\\Sent': ['sent', 'sent items', 'sent messages', 'sent mail'],
  '\\Drafts': ['drafts', 'draft'],
  '\\Trash': ['trash', 'deleted items', 'deleted messages', 'bin'],
  '\\Junk': ['junk', 'junk e-mail', 'junk email', 'spam', 'bulk mail'],
  '\\Archive': ['archive', 'archives'],
};

export interface MapRule {
  /** Source path, "/"-separated. */
  from: string;
  /** Target path, "/"-separated. */
  to: string;
}

/** `OLD=NEW` (split at the first "="); a usage error when malformed. */
export function parseMapRule(text: string): MapRule {
  const i = text.indexOf('=');
  const from = i < 0 ? '' : text.slice(0, i);
  const to = i < 0 ? '' : text.slice(i + 1);
  const bad = (p: string): boolean => p === '' || p.split('/').some((c) => c === '' || (c.includes('*') && c !== '*'));
  const starred = (p: string): boolean => p === '*' || p.endsWith('/*');
  const stars = (p: string): number => p.split('/').filter((c) => c === '*').length;
  if (i < 0 || bad(from) || bad(to) || starred(from) !== starred(to) || stars(from) > 1 || stars(to) > 1 || (stars(from) === 1 && !starred(from)) || (stars(to) === 1 && !starred(to))) {
    throw new MailferryError(
      'usage',
      `--map ${text}: expected OLD=NEW (folder paths with "/" between non-empty components) or a subtree OLD/*=NEW/* ("*" last, on both sides)`,
    );
  }
  return { from, to };
}

/** The target path ("/"-separated) a rule gives a source path ("/"-separated), or undefined. */
function applyRule(rule: MapRule, written: string): string | undefined {
  if (!rule.from.endsWith('*')) return rule.from === written ? rule.to : undefined;
  const from = rule.from === '*' ? '' : rule.from.slice(0, -2);
  const to = rule.to === '*' ? '' : rule.to.slice(0, -2);
  let rest: string;
  if (from === '') rest = written;
  else if (written === from) rest = '';
  else if (written.startsWith(`${from}/`)) rest = written.slice(from.length + 1);
  else return undefined;
  if (rest === '') return to === '' ? undefined : to;
  return to === '' ? rest : `${to}/${rest}`;
}

/** The rule for a source path: an exact rule, else the pattern with the longest OLD. */
function ruleFor(rules: readonly MapRule[], written: string): { rule: MapRule; to: string } | undefined {
  const ranked = [...rules].sort((a, b) => Number(a.from.endsWith('*')) - Number(b.from.endsWith('*')) || b.from.length - a.from.length);
  for (const rule of ranked) {
    const to = applyRule(rule, written);
    if (to !== undefined) return { rule, to };
  }
  return undefined;
}

/** A role RFC 6154 names and we map, case-insensitively; else undefined. */
export function normalRole(flag: string | undefined): Role | undefined {
  if (flag === undefined) return undefined;
  return MAPPED_ROLES.find((r) => r.toLowerCase() === flag.toLowerCase());
}

/** The role a folder's name suggests: a top-level folder (or a child of INBOX) with a well-known name. */
export function roleByName(path: string, delimiter: string | null): Role | undefined {
  const parts = delimiter === null || delimiter === '' ? [path] : path.split(delimiter);
  const name = parts.length === 1 ? parts[0] : parts.length === 2 && parts[0]?.toUpperCase() === 'INBOX' ? parts[1] : undefined;
  if (name === undefined) return undefined;
  const lower = name.toLowerCase();
  return MAPPED_ROLES.find((r) => ROLE_NAMES[r].includes(lower));
}

/**
 * The role of a source folder: its SPECIAL-USE flag, else its well-known name (an archive keeps no
 * flags, and an old server announces none).
 */
export function sourceRole(mailbox: Pick<MailboxInfo, 'path' | 'delimiter' | 'specialUse'>): Role | undefined {
  return normalRole(mailbox.specialUse) ?? roleByName(mailbox.path, mailbox.delimiter === '' ? null : mailbox.delimiter);
}

export interface ListedFolder {
  path: string;
  specialUse?: string;
  noSelect?: boolean;
}

/**
 * Role -> target path. A role the server flags wins; then the folder the target's provider profile
 * names for the role (`folders.roles`, by SPECIAL-USE flag: GMX's "Gesendet" is its \Sent), when
 * the target lists it; then a well-known name, in the order of ROLE_NAMES (so "Sent" before "Sent
 * Items") then the path, so the choice is stable.
 */
export function targetRoles(listed: readonly ListedFolder[], delimiter: string | null, named: ReadonlyMap<string, string> = new Map()): Map<Role, string> {
  const out = new Map<Role, string>();
  const selectable = listed.filter((l) => l.noSelect !== true);
  for (const l of [...selectable].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const role = normalRole(l.specialUse);
    if (role !== undefined && !out.has(role)) out.set(role, l.path);
  }
  for (const [flag, path] of named) {
    const role = normalRole(flag);
    if (role !== undefined && !out.has(role) && selectable.some((l) => l.path === path)) out.set(role, path);
  }
  for (const role of MAPPED_ROLES) {
    if (out.has(role)) continue;
    const rank = (p: string): number => {
      const parts = delimiter === null || delimiter === '' ? [p] : p.split(delimiter);
      return ROLE_NAMES[role].indexOf((parts[parts.length - 1] ?? '').toLowerCase());
    };
    const named = selectable
      .filter((l) => roleByName(l.path, delimiter) === role)
      .sort((a, b) => rank(a.path) - rank(b.path) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    if (named[0] !== undefined) out.set(role, named[0].path);
  }
  return out;
}

/** Components joined by the target's delimiter; a component holding it cannot be represented. */
export function joinForTarget(parts: readonly string[], delimiter: string | null, sourcePath: string, where: string): string {
  const d = delimiter;
  const bad = parts.find((p) => (d === null || d === '' ? parts.length > 1 : p.includes(d)));
  if (bad !== undefined) {
    throw new MailferryError(
      'mailbox',
      `folder "${sourcePath}" cannot be created on ${where}: "${bad}" contains its hierarchy delimiter "${d ?? ''}"`,
    );
  }
  return parts.join(d ?? '');
}

export type MapReason = 'map' | 'role' | 'name';

export interface Mapped {
  path: string;
  reason: MapReason;
  /** The source folder's role when it had one (also when the target had no folder for it). */
  role?: Role;
  /** The `--map` rule that decided it. */
  rule?: MapRule;
}

export interface MapContext {
  rules: readonly MapRule[];
  /** The target's hierarchy delimiter; null for a flat namespace. */
  delimiter: string | null;
  roles: ReadonlyMap<Role, string>;
  where: string;
}

/** The target path of a source folder (see the module comment for the order). */
export function mapFolder(mailbox: Pick<MailboxInfo, 'path' | 'delimiter' | 'specialUse'>, ctx: MapContext): Mapped {
  const parts = pathComponents(mailbox);
  const written = parts.join('/');
  const hit = ruleFor(ctx.rules, written);
  if (hit !== undefined) return { path: joinForTarget(hit.to.split('/'), ctx.delimiter, mailbox.path, ctx.where), reason: 'map', rule: hit.rule };
  const role = sourceRole(mailbox);
  if (role !== undefined) {
    const t = ctx.roles.get(role);
    if (t !== undefined) return { path: t, reason: 'role', role };
    return { path: joinForTarget(parts, ctx.delimiter, mailbox.path, ctx.where), reason: 'name', role };
  }
  return { path: joinForTarget(parts, ctx.delimiter, mailbox.path, ctx.where), reason: 'name' };
}
