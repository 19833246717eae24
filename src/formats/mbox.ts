/**
 * mboxrd framing (RFC 4155 and the mboxrd convention): each message is
 *   "From MAILER-DAEMON <asctime UTC>\n" + metadata headers + quoted LF body + "\n"
 * where a message that does not end in LF gets one; the archive's state lists those messages (by the
 * offset of their From_ line) so that the reader can take it off again.
 *
 * Metadata headers carry IMAP flags the way Dovecot and mutt read them:
 *   Status: "R" = \Seen, "O" = not new;  X-Status: A=\Answered F=\Flagged T=\Draft D=\Deleted;
 *   X-Keywords: keywords separated by spaces.
 * They are always written first, right after the From_ line, all three, in this order, so that our
 * reader strips exactly those lines and gives back the original bytes. A Status or X-Status header
 * the message already carried is kept, after ours: Python's mailbox module takes ours (the first);
 * mutt adds up the flags of every such line, so there the message also shows what its own say
 * (test/e2e/backup.test.ts reads both archives with mutt).
 *
 * A labelled message (Gmail mode) gets a fourth line, `X-Gmail-Labels:`, in Google Takeout's form:
 * comma-separated, system labels as `Inbox`, `Sent`, `Starred`, `Important`, `Drafts`, user
 * labels by name with `/` nesting (UTF-8; a label holding a comma or quote is quoted). The reader
 * takes it off again in a folder whose state records labels.
 */
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** asctime(3) in UTC, e.g. "Wed Nov  2 06:36:00 2026". */
export function asctime(d: Date): string {
  const day = d.getUTCDate();
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${day < 10 ? ' ' : ''}${day} ${two(d.getUTCHours())}:${two(
    d.getUTCMinutes(),
  )}:${two(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

export function fromLine(date: Date | undefined): string {
  // No INTERNALDATE (POP3), or not a date (the sink warned: drivers/archive-date.ts): the time of
  // archiving, as a local delivery agent would write; never "undefined NaN".
  return `From MAILER-DAEMON ${asctime(date !== undefined && Number.isFinite(date.getTime()) ? date : new Date())}\n`;
}

export function metadataHeaders(flags: ReadonlySet<string>): string {
  const status = flags.has('\\Seen') ? 'RO' : 'O';
  let x = '';
  if (flags.has('\\Answered')) x += 'A';
  if (flags.has('\\Flagged')) x += 'F';
  if (flags.has('\\Draft')) x += 'T';
  if (flags.has('\\Deleted')) x += 'D';
  const keywords = [...flags].filter((f) => !f.startsWith('\\') && /^[\x21-\x7e]+$/.test(f)).sort();
  return `Status: ${status}\nX-Status: ${x}\nX-Keywords: ${keywords.join(' ')}\n`;
}

/** Takeout's names for Gmail's system labels. */
const TAKEOUT: Readonly<Record<string, string>> = { '\\Inbox': 'Inbox', '\\Sent': 'Sent', '\\Starred': 'Starred', '\\Important': 'Important', '\\Draft': 'Drafts' };

/** The `X-Gmail-Labels:` line of a labelled message, "" for one without labels (outside Gmail mode). */
export function labelsHeader(labels: readonly string[] | undefined): string {
  if (labels === undefined) return '';
  const names = labels.map((l) => TAKEOUT[l] ?? l).map((l) => (/[",\n]/.test(l) ? `"${l.replace(/["\\]/g, '\\$&').replace(/\n/g, ' ')}"` : l));
  return `X-Gmail-Labels: ${names.join(',')}\n`;
}

/** The labels of an `X-Gmail-Labels:` value (labelsHeader's inverse): Gmail's names, sorted. */
export function parseLabelsHeader(value: string): string[] {
  const back = new Map(Object.entries(TAKEOUT).map(([label, name]) => [name, label]));
  const out: string[] = [];
  let name = '';
  let quoted = false;
  const end = (): void => {
    const n = quoted ? name : name.trim();
    if (n !== '') out.push(back.get(n) ?? n);
    name = '';
    quoted = false;
  };
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (c === '"' && name.trim() === '' && !quoted) {
      // A quoted label: up to the closing quote, with \" and \\ escaped.
      name = '';
      quoted = true;
      for (i++; i < value.length && value[i] !== '"'; i++) name += value[i] === '\\' ? (value[++i] ?? '') : value[i];
    } else if (c === ',') end();
    else if (!quoted) name += c;
  }
  end();
  return out.sort();
}

export function flagsFromMetadata(status: string, xStatus: string, keywords: string): Set<string> {
  const flags = new Set<string>();
  if (status.includes('R')) flags.add('\\Seen');
  if (xStatus.includes('A')) flags.add('\\Answered');
  if (xStatus.includes('F')) flags.add('\\Flagged');
  if (xStatus.includes('T')) flags.add('\\Draft');
  if (xStatus.includes('D')) flags.add('\\Deleted');
  for (const k of keywords.split(/\s+/)) if (k !== '') flags.add(k);
  return flags;
}
