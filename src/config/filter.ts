import type { MessageFilter } from '../sources/filter.js';
import type { Problems } from './problems.js';

/** `--since`, `--before`, `--max-size`, `--unseen-only` as typed; checked by parseFilter. */
export interface RawFilterFlags {
  since?: string;
  before?: string;
  maxSize?: string;
  unseenOnly?: boolean;
}

/**
 * The message filter of backup, restore and migrate (see sources/filter.ts), every problem added
 * to `problems`. A date is `YYYY-MM-DD` (midnight UTC) or an ISO 8601 time with a zone
 * (`2024-03-01T12:00:00+01:00`); a size is bytes, or a number with K or M (1024-based).
 */
export function parseFilter(problems: Problems, raw: RawFilterFlags): MessageFilter {
  const since = raw.since === undefined ? undefined : parseDate(problems, '--since', raw.since);
  const before = raw.before === undefined ? undefined : parseDate(problems, '--before', raw.before);
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

function parseDate(problems: Problems, flag: string, text: string): Date | undefined {
  const t = text.trim();
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t);
  const full = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(t);
  const d = day !== null ? new Date(Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3]))) : full ? new Date(t) : undefined;
  // Date.UTC rolls 2024-02-31 over into March: a real date survives the round trip.
  const real = d !== undefined && !Number.isNaN(d.getTime()) && (day === null || d.toISOString().slice(0, 10) === t);
  if (!real) {
    problems.push(`${flag} needs a date: YYYY-MM-DD (midnight UTC) or YYYY-MM-DDTHH:MM[:SS]Z / +HH:MM, not "${text}"`);
    return undefined;
  }
  return d;
}

function parseSize(problems: Problems, text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmM]?)$/.exec(text.trim());
  const unit = m?.[2]?.toLowerCase() === 'k' ? 1024 : m?.[2]?.toLowerCase() === 'm' ? 1024 * 1024 : 1;
  const n = m === null ? NaN : Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n) || n < 1) {
    problems.push(`--max-size needs a size: BYTES, NK or NM (1024-based, at least 1 byte), not "${text}"`);
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
