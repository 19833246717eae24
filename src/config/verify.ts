import { MailferryError } from '../domain/errors.js';
import { IGNORABLE, type Ignorable } from '../verify/difference.js';
import { loadBackupConfig, type BackupConfig, type RawBackupFlags } from './backup.js';
import type { Problems } from '../domain/problems.js';
import { loadMigrateConfig, loadRestoreConfig, type MigrateConfig, type RawMigrateFlags, type RawRestoreFlags, type RestoreConfig } from './transfer.js';

/**
 * The loader for `verify`: it takes the flags of the command that made the copy, so that swapping
 * the word is enough, and hands them to that command's own loader (the same checks, defaults,
 * profiles, folder mapping and message filters). Which copy it was is read from the addresses:
 * - `--from maildir:DIR` or `mbox:DIR`: a restore (the copy is the IMAP account of `--to`/`--user`);
 * - `--to imaps://...` (one) or `--target-user`: a migrate (and its `--archive`s, copies too);
 * - else a backup (every `--to maildir:/mbox:` is a copy).
 * Flags that only change what a copy does (`--delete`, `--dry-run`, `--sync-deletions`, budgets)
 * are accepted and have no effect. Its own: `--quick`, `--ignore flags,dates,extra`.
 */
export type VerifyConfig = (
  | { mode: 'backup'; copy: BackupConfig }
  | { mode: 'restore'; copy: RestoreConfig }
  | { mode: 'migrate'; copy: MigrateConfig }
) & { depth: 'quick' | 'full'; ignore: Set<Ignorable> };

export interface RawVerifyFlags extends Omit<RawBackupFlags, 'to'>, Omit<RawRestoreFlags, 'to'>, Omit<RawMigrateFlags, 'to'> {
  to?: string[];
  quick?: boolean;
  /** `--ignore flags,dates,extra` (repeatable or comma-separated). */
  ignore?: string[];
}

const REMOTE = /^(imaps?|pop3s?):\/\//i;

export function loadVerifyConfig(raw: RawVerifyFlags): VerifyConfig {
  const problems: Problems = [];
  const ignore = new Set<Ignorable>();
  for (const word of (raw.ignore ?? []).flatMap((w) => w.split(','))) {
    const w = word.trim();
    if (w === '') continue;
    if ((IGNORABLE as readonly string[]).includes(w)) ignore.add(w as Ignorable);
    else problems.push(`--ignore ${w}: expected ${IGNORABLE.join(', ')} (comma-separated)`);
  }
  const depth = raw.quick === true ? 'quick' : 'full';
  const to = raw.to ?? [];
  const local = raw.from !== undefined && !REMOTE.test(raw.from);
  const imapTo = to.filter((t) => /^imaps?:\/\//i.test(t));
  const mode = local ? 'restore' : imapTo.length > 0 || raw.targetUser !== undefined ? 'migrate' : 'backup';
  if (mode !== 'backup' && to.length > 1) problems.push(`--to: one IMAP account to verify a ${mode} (${to.length} given)`);
  const { to: _list, ...rest } = raw;
  const one = to[0] === undefined ? {} : { to: to[0] };
  const load = (): VerifyConfig['copy'] => {
    if (mode === 'backup') return loadBackupConfig({ ...raw, to });
    if (mode === 'restore') return loadRestoreConfig({ ...rest, ...one });
    return loadMigrateConfig({ ...rest, ...one });
  };
  let copy: VerifyConfig['copy'] | undefined;
  try {
    copy = load();
  } catch (e: unknown) {
    if (!(e instanceof MailferryError) || e.kind !== 'usage') throw e;
    problems.push(e.message);
  }
  if (problems.length > 0 || copy === undefined) throw new MailferryError('usage', problems.join('; '));
  const common = { depth, ignore } as const;
  if (mode === 'backup') return { mode, copy: copy as BackupConfig, ...common };
  if (mode === 'restore') return { mode, copy: copy as RestoreConfig, ...common };
  return { mode, copy: copy as MigrateConfig, ...common };
}
