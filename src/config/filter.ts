import type { MessageFilter } from '../sources/filter.js';
import type { Problems } from '../domain/problems.js';

/** `--since`, `--before`, `--max-size`, `--unseen-only` as typed; checked by parseFilter. */
export interface RawFilterFlags {
  since?: string;
  before?: string;
  maxSize?: string;
  unseenOnly?: boolean;
}

/**
 * The message filter of backup, restore and migrate (see sources/filter.ts), every problem added
 * to `problems`. A date is `YYYY-MM-DD` (midnight UTC), an ISO 8601 time with a zone
 * (`2024-03-01T12:00:00+01:00`), or an age back from today (`now`'s UTC date) at midnight UTC:
 * `7d` days, `2w` weeks, `3m` months, `1y` years (imapsync's --maxage, in the units people say; a
 * month or year back from the 31st or 29 February is the last day of the shorter month). A size
 * is bytes, or a number with K or M (1024-based).
 */
export function parseFilter(problems: Problems, raw: RawFilterFlags, now: Date = new Date()): MessageFilter {
  const since = raw.since === undefined ? undefined : parseDate(problems, '--since', raw.since, now);
  const before = raw.before === undefined ? undefined : parseDate(problems, '--before', raw.before, now);
  if (since !== undefined && before !== undefined && since.getTime() >= before.getTime()) {
    problems.push(`--since ${raw.since ?? ''} is not before --before ${raw.before ?? ''}: no message could match`);
  }
  const maxSize = raw.maxSize === undefined ? undefined : parseSize(problems, raw.maxSize);
  return {
    ...(since === undefined ? {} : { since }),
    ...(before === undefined ? {} : { before }),
    ...(maxSize === undefined ? {} : { maxSize }),
    ...(raw.unseenOnly === true ? { unseenOnly: true } : {}),
  };
}

function parseDate(problems: Problems, flag: string, text: string, now: Date): Date | undefined {
  const t = text.trim();
  const age = /^(\d{1,5})([dwmy])$/.exec(t);
  if (age !== null) return ago(Number(age[1]), age[2] as 'd' | 'w' | 'm' | 'y', now);
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t);
  const full = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(t);
  const d = day !== null ? new Date(Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3]))) : full ? new Date(t) : undefined;
  // Date.UTC rolls 2024-02-31 over into March: a real date survives the round trip.
  const real = d !== undefined && !Number.isNaN(d.getTime()) && (day === null || d.toISOString().slice(0, 10) === t);
  if (!real) {
    problems.push(`${flag} needs a date: YYYY-MM-DD (midnight UTC), YYYY-MM-DDTHH:MM[:SS]Z / +HH:MM, or an age such as 7d, 2w, 3m, 1y, not "${text}"`);
    return undefined;
  }
  return d;
}

/** Midnight UTC `n` days, weeks, months or years before `now`'s UTC date; a day past the target month's end is its last day. */
function ago(n: number, unit: 'd' | 'w' | 'm' | 'y', now: Date): Date {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  const d = now.getUTCDate();
  if (unit === 'd' || unit === 'w') return new Date(Date.UTC(y, m, d - n * (unit === 'w' ? 7 : 1)));
  const months = m - n * (unit === 'y' ? 12 : 1);
  const last = new Date(Date.UTC(y, months + 1, 0)).getUTCDate();
  return new Date(Date.UTC(y, months, Math.min(d, last)));
}

/** BYTES, NK or NM (1024-based), at least 1 byte; a problem naming `flag` otherwise. */
export function parseSize(problems: Problems, text: string, flag = '--max-size'): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmM]?)$/.exec(text.trim());
  const unit = m?.[2]?.toLowerCase() === 'k' ? 1024 : m?.[2]?.toLowerCase() === 'm' ? 1024 * 1024 : 1;
  const n = m === null ? NaN : Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n) || n < 1) {
    problems.push(`${flag} needs a size: BYTES, NK or NM (1024-based, at least 1 byte), not "${text}"`);
    return undefined;
  }
  return n;
}

/** The filter flags given, by name (`--since`, ...), for options that cannot be combined with a filter. */
export function filterFlagsGiven(raw: RawFilterFlags): string[] {
  return [
    ...(raw.since === undefined ? [] : ['--since']),
    ...(raw.before === undefined ? [] : ['--before']),
    ...(raw.maxSize === undefined ? [] : ['--max-size']),
    ...(raw.unseenOnly === true ? ['--unseen-only'] : []),
  ];
}
