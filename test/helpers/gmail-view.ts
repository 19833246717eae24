import type { GmailMessage } from './gmail-peer.js';
import { connect, type Account } from './server.js';
import type { DovecotServer } from '../../scripts/dev/dovecot.js';

/**
 * What the Gmail tests compare: a Dovecot account's messages as folders and keywords, and the
 * Gmail stand-in's as labels.
 */

/** Every message on a Dovecot account: Message-ID -> [folder, its keywords and \Flagged, sorted][]. */
export async function onTarget(server: DovecotServer, user: Account): Promise<Map<string, [string, string[]][]>> {
  const c = await connect(server, user);
  const out = new Map<string, [string, string[]][]>();
  try {
    for (const f of await c.list()) {
      if (f.flags.has('\\Noselect')) continue;
      const box = await c.mailboxOpen(f.path, { readOnly: true });
      if (box.exists === 0) continue;
      for await (const m of c.fetch('1:*', { uid: true, flags: true, envelope: true })) {
        const flags = [...(m.flags ?? [])].filter((x) => !x.startsWith('\\') || x === '\\Flagged').sort();
        const id = m.envelope?.messageId ?? '?';
        out.set(id, [...(out.get(id) ?? []), [f.path, flags]]);
      }
    }
  } finally {
    await c.logout();
  }
  return out;
}

/** The stand-in's messages as [Message-ID, labels, bin], sorted. */
export function labelView(msgs: readonly GmailMessage[]): [string, string, string][] {
  return msgs.map((m): [string, string, string] => [/^Message-ID: (.*)$/m.exec(m.raw.toString('latin1'))?.[1]?.trim() ?? '?', [...m.labels].sort().join(','), m.bin ?? '']).sort();
}

/** onTarget's map as a plain object, by Message-ID. */
export function byMessage(got: ReadonlyMap<string, [string, string[]][]>): Record<string, [string, string[]][]> {
  return Object.fromEntries([...got].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * gmailMailbox() on a server without labels with `--labels keywords`: each message once, in the
 * folder of its most specific label, the others as keywords (sources/label-homes.ts).
 */
export const KEYWORD_HOMES: Readonly<Record<string, [string, string[]][]>> = {
  '<m0@gmail.test>': [['[Gmail]/All Mail', []]],
  '<m1@gmail.test>': [['INBOX', []]],
  '<m2@gmail.test>': [['INBOX', ['$Important']]],
  '<m3@gmail.test>': [['Work/Projects', ['$Sent', 'Rechnungen_bezahlt']]],
  '<m4@gmail.test>': [['Reisen/Köln 2024', ['$Inbox', 'Work', '\\Flagged']]],
  '<m5@gmail.test>': [['Reisen/Köln 2024', ['$Important', 'Rechnungen_bezahlt', 'Work/Projects']]],
  '<m6@gmail.test>': [['[Gmail]/Spam', []]],
  '<m7@gmail.test>': [['[Gmail]/Trash', []]],
  '<m8@gmail.test>': [['[Gmail]/Drafts', []]],
};
