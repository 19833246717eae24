import { resolve } from 'node:path';
import type { MaildirLayout } from '../drivers/maildir/sink.js';
import { parseEndpoint, type LocalEndpoint, type RemoteEndpoint } from '../endpoints/url.js';
import { resolveProfile, type ProfileSettings, type RawProfileFlags } from '../profiles/resolve.js';
import type { MessageFilter } from '../sources/filter.js';
import { DEFAULTS } from './defaults.js';
import { parseSize } from './filter.js';
import { attempt, type Problems } from '../domain/problems.js';

/** The checks several command loaders share, each adding what is wrong to `problems`. */

/**
 * The mail account a command reads (backup, folders): `--from URL`, or `--user ADDRESS` with its
 * provider's profile; the profile's settings either way (its skipped folders, its limits).
 */
export function accountFrom(problems: Problems, raw: RawProfileFlags & { from?: string }, command: string): { from?: RemoteEndpoint; prof: ProfileSettings } {
  let from: RemoteEndpoint | undefined;
  if (raw.from === undefined) {
    if (raw.user === undefined) problems.push('--from is required (imaps://USER@HOST or pop3s://USER@HOST), or --user ADDRESS to use a provider profile');
  } else {
    const e = attempt(problems, () => parseEndpoint(raw.from as string));
    if (e !== undefined) {
      if ('path' in e) problems.push(`--from must be a mail account for ${command} (imaps://, imap://, pop3s:// or pop3://USER@HOST)`);
      else from = e;
    }
  }
  const prof = resolveProfile(problems, raw, from);
  from ??= prof.endpoint;
  return { ...(from === undefined ? {} : { from }), prof };
}

/** `maildir:DIR` or `mbox:DIR`, given as `flag`. */
export function localEndpoint(problems: Problems, text: string, flag: string): LocalEndpoint | undefined {
  const e = attempt(problems, () => parseEndpoint(text));
  if (e === undefined) return undefined;
  if (!('path' in e)) {
    problems.push(`${flag} ${text}: must be a local archive (maildir:DIR or mbox:DIR)`);
    return undefined;
  }
  return e;
}

/**
 * A repeatable archive flag (`--to`, `--archive`): each a local endpoint, no directory twice, nor
 * the one `taken` (a local source); `twice` ends the message about a repeat.
 */
export function localEndpoints(problems: Problems, texts: readonly string[], flag: string, taken?: string, twice = 'is given twice'): LocalEndpoint[] {
  const out: LocalEndpoint[] = [];
  for (const t of texts) {
    const e = localEndpoint(problems, t, flag);
    if (e === undefined) continue;
    if (out.some((x) => x.path === e.path) || e.path === taken) problems.push(`${flag} ${t} ${twice}`);
    else out.push(e);
  }
  return out;
}

/** `--layout`, maildir++ unless given. */
export function layoutFlag(problems: Problems, text: string | undefined): MaildirLayout {
  const layout = text ?? DEFAULTS.layout;
  if (layout !== 'maildir++' && layout !== 'fs') problems.push('--layout must be maildir++ or fs');
  return layout as MaildirLayout;
}

/**
 * How much one fetch batch holds: `--batch-mb` (16 unless given), and the fixed message count and
 * streaming threshold; and the largest message a server may send, `--max-message-size` (1 GiB
 * unless given).
 */
export function batchSizes(
  problems: Problems,
  batchMb: number = DEFAULTS.batchMb,
  maxMessageSize?: string,
): { batchBytes: number; batchMessages: number; streamThreshold: number; maxMessageSize: number } {
  if (!(batchMb > 0 && batchMb <= 1024)) problems.push('--batch-mb must be between 0 and 1024');
  const max = maxMessageSize === undefined ? DEFAULTS.maxMessageSize : (parseSize(problems, maxMessageSize, '--max-message-size') ?? DEFAULTS.maxMessageSize);
  return { batchBytes: Math.round(batchMb * (1 << 20)), batchMessages: DEFAULTS.batchMessages, streamThreshold: DEFAULTS.streamThreshold, maxMessageSize: max };
}

/** `--state FILE`, absolute (`~/` already expanded by flags.ts); left out when not given (the command picks one under state/dir.ts). */
export function stateFlag(problems: Problems, text: string | undefined): { statePath?: string } {
  if (text === undefined) return {};
  if (text.trim() === '') {
    problems.push('--state needs a file name');
    return {};
  }
  return { statePath: resolve(text) };
}

/** `--unseen-only` needs flags, which POP3 has not. */
export function unseenOnlyFlag(problems: Problems, filter: MessageFilter, kind: string | undefined): void {
  if (filter.unseenOnly === true && kind === 'pop3') problems.push('--unseen-only is for IMAP sources only (POP3 has no flags)');
}
