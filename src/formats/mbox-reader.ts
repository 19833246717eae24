import { openNoFollow } from '../state/no-follow.js';
import { flagsFromMetadata } from './mbox.js';
import { unquoteMboxrd } from './encoder.js';

/**
 * Reads an mboxrd file as written by our mbox sink (and, best effort, any mboxrd/mboxo file):
 * yields each message with its From_ line, flags from our metadata headers, and the original bytes
 * (LF, unquoted, our metadata lines removed). One message is held in memory at a time.
 * `noEol` holds the From_ offsets of messages that had no final newline (from the archive state).
 */
export interface MboxEntry {
  readonly offset: number;
  readonly fromLine: string;
  readonly flags: Set<string>;
  /** Original message bytes, LF line endings. */
  readonly body: Buffer;
}

const META = [/^Status: ([A-Z]*)\n$/, /^X-Status: ([A-Z]*)\n$/, /^X-Keywords: ?(.*)\n$/];
/** The fourth metadata line of a labelled message (formats/mbox.ts), read only where the state says labels were written. */
const LABELS = /^X-Gmail-Labels: ?(.*)\n$/;

export async function* readMbox(
  path: string,
  noEol: ReadonlySet<number> = new Set(),
  start = 0,
  end?: number,
  labelled = false,
): AsyncGenerator<MboxEntry> {
  // Never through a link planted in the archive (state/no-follow.ts); the stream closes the handle.
  const fh = await openNoFollow(path, 'r');
  const stream = fh.createReadStream({ start, ...(end === undefined ? {} : { end: end - 1 }) });
  let carry = Buffer.alloc(0);
  let offset = start;
  let current: { offset: number; fromLine: string; lines: Buffer[] } | null = null;
  const finish = (): MboxEntry | null => {
    if (current === null) return null;
    return parseEntry(current.offset, current.fromLine, current.lines, noEol.has(current.offset), labelled);
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const b = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
    let pos = 0;
    for (;;) {
      const nl = b.indexOf(0x0a, pos);
      if (nl === -1) break;
      const line = b.subarray(pos, nl + 1);
      if (line.length >= 5 && line.subarray(0, 5).toString('latin1') === 'From ') {
        const done = finish();
        if (done) yield done;
        current = { offset: offset + pos, fromLine: line.toString('latin1').trimEnd(), lines: [] };
      } else if (current !== null) {
        current.lines.push(line);
      }
      pos = nl + 1;
    }
    offset += pos;
    carry = Buffer.from(b.subarray(pos));
  }
  if (current !== null && carry.length > 0) current.lines.push(carry);
  const last = finish();
  if (last) yield last;
}

function parseEntry(offset: number, fromLine: string, lines: Buffer[], noEol: boolean, labelled: boolean): MboxEntry {
  const meta: string[] = [];
  let i = 0;
  while (i < META.length && i < lines.length) {
    const m = META[i]?.exec((lines[i] as Buffer).toString('latin1'));
    if (!m) break;
    meta.push(m[1] ?? '');
    i++;
  }
  const flags = meta.length === 3 ? flagsFromMetadata(meta[0] ?? '', meta[1] ?? '', meta[2] ?? '') : new Set<string>();
  if (meta.length !== 3) i = 0; // not our framing: keep every line as part of the message
  else if (labelled && i < lines.length && LABELS.test((lines[i] as Buffer).toString('utf8'))) i++;
  let body = Buffer.concat(lines.slice(i));
  // The separator: one empty line before the next From_ (or end of file).
  if (body.length > 0 && body[body.length - 1] === 0x0a) body = body.subarray(0, body.length - 1);
  if (noEol && body.length > 0 && body[body.length - 1] === 0x0a) body = body.subarray(0, body.length - 1);
  return { offset, fromLine, flags, body: unquoteMboxrd(body) };
}
