/**
 * What `mailferry verify` finds, one record per difference, and the counts per folder.
 *
 * Kinds: `missing` (a source message the copy lacks), `extra` (a message in the copy that no
 * source message accounts for), `altered` (paired, but its bytes, headers or size differ), `flags`
 * (system flags or keywords differ), `date` (internal dates differ, to the second),
 * `folder-missing` (a source folder with messages has no folder in the copy), `folder-extra` (a
 * folder of the copy with messages that no source folder maps to) and `known` (a documented,
 * unavoidable difference of the copy: POP3 has no flags or dates, Dovecot serves NUL as 0x80, a
 * final newline added as mbox framing), which never makes verify fail.
 */
export type DifferenceKind = 'missing' | 'extra' | 'altered' | 'flags' | 'date' | 'folder-missing' | 'folder-extra' | 'known';

export interface Difference {
  kind: DifferenceKind;
  /** The copy (`maildir:/srv/backup`, `imaps://me@host:993`). */
  destination: string;
  /** The source folder (for `folder-extra`, the copy's folder). */
  folder: string;
  /** The copy's folder when it has another name (IMAP target mapping). */
  target?: string;
  /** The source id (UID, UIDL, Maildir name, mbox offset); absent for an `extra` message. */
  id?: string;
  /** The copy's id of the message (for `extra`, and for pairs). */
  copyId?: string;
  messageId?: string;
  subject?: string;
  /** What differs, in words. */
  detail: string;
}

/** `--ignore`: kinds of difference not reported and not counted. */
export type Ignorable = 'flags' | 'dates' | 'extra';
export const IGNORABLE: readonly Ignorable[] = ['flags', 'dates', 'extra'];

export interface FolderCounts {
  folder: string;
  target: string;
  /** Messages compared on each side. */
  source: number;
  copy: number;
  missing: number;
  extra: number;
  altered: number;
  flags: number;
  dates: number;
  known: number;
}

export interface VerifyOutcome {
  destination: string;
  depth: 'quick' | 'full';
  folders: FolderCounts[];
  foldersMissing: number;
  foldersExtra: number;
  /** Differences found, every kind but `known` (those ignored are not counted). */
  differences: number;
}

/** Differences that make verify fail: every kind but `known`. */
export function counts(d: Difference): boolean {
  return d.kind !== 'known';
}
