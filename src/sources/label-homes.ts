import type { MailboxInfo, MessageMeta } from '../domain/message.js';
import { encodeUtf7 } from '../formats/utf7.js';
import { LabelViews } from './label-views.js';

/**
 * `--labels keywords` (migrate from a Gmail source in Gmail mode into a server without Gmail's
 * labels): each message of the labelled folder (All Mail) is copied once, into the folder of its
 * most specific label (its home), and carries its other labels as IMAP keywords (RFC 3501 2.3.2).
 * A wrapper around the Gmail-mode source (label-views.ts), so the pipeline and the IMAP target
 * see plain folders:
 *
 * - `mailboxes()`: each label folder that can be a home becomes a plain folder (its `label`
 *   dropped); the folders of \Starred and \Important are left out (those labels are flags:
 *   \Flagged, $Important); All Mail stays, for the messages with no home label (archived mail),
 *   with the \Archive role so it lands in the target's Archive folder where there is one.
 * - A home folder's messages are All Mail's (label-views.ts), each handed on with `mailbox` = its
 *   home.
 * - The home (`homeOf`): the deepest user label (the most "/" levels; among equals the first by
 *   name), else \Sent, \Draft, \Inbox, else none (All Mail). Only labels shown as a folder count.
 * - Keywords (`labelKeyword`): `\Starred` is \Flagged (as Gmail itself maps it), another system
 *   label `\X` is `$X` ($Important is RFC 8457's), a user label its name in modified UTF-7 (RFC
 *   3501 5.1.3, as Thunderbird stores tag names) with characters an atom cannot hold (space, ( ) {
 *   % * " \ ] and controls) as `_`. A target whose PERMANENTFLAGS lacks \* drops them.
 * - A label changed on Gmail after the copy: the keywords follow on rerun (the IMAP target's flag
 *   sync); a message whose home changed is copied into its new home, the old copy stays.
 */
export class LabelHomes extends LabelViews {
  /** label -> home path. */
  private readonly byLabel = new Map<string, string>();

  protected show(all: readonly MailboxInfo[]): MailboxInfo[] {
    const out: MailboxInfo[] = [];
    for (const m of all) {
      if (m.labelled === true) {
        const { labelled: _l, ...plain } = m;
        out.push({ ...plain, specialUse: '\\Archive' });
        this.views.set(m.path, m);
      } else if (m.label !== undefined) {
        if (!canBeHome(m.label)) continue;
        const { label: _l, ...plain } = m;
        out.push(plain);
        this.views.set(m.path, m);
        this.byLabel.set(m.label, m.path);
      } else out.push(m);
    }
    return out;
  }

  /** The home folder's path of a message with `labels`. */
  homeOf(labels: readonly string[]): string {
    const label = homeLabel(labels.filter((l) => this.byLabel.has(l)));
    return (label === undefined ? undefined : this.byLabel.get(label)) ?? (this.labelled as MailboxInfo).path;
  }

  protected holds(m: MessageMeta, path: string): boolean {
    return this.homeOf(m.labels ?? []) === path;
  }

  /** A message of All Mail as its home folder hands it on: the other labels as keywords. */
  protected as(m: MessageMeta, home: MailboxInfo): MessageMeta {
    const labels = m.labels ?? [];
    const homeLabel = this.views.get(home.path)?.label;
    const flags = new Set(m.flags);
    for (const l of labels) if (l !== homeLabel) flags.add(labelKeyword(l));
    const { labels: _l, ...rest } = m;
    return { ...rest, mailbox: home, flags };
  }
}

/** \Starred and \Important are flags in a folder-based server, never a message's folder. */
function canBeHome(label: string): boolean {
  return label !== '\\Starred' && label !== '\\Important';
}

const SYSTEM_HOMES = ['\\Sent', '\\Draft', '\\Inbox'];

/** The most specific of `labels` (each shown as a folder that can be a home), or undefined. */
export function homeLabel(labels: readonly string[]): string | undefined {
  const user = labels.filter((l) => !l.startsWith('\\')).sort((a, b) => depth(b) - depth(a) || (a < b ? -1 : a > b ? 1 : 0));
  return user[0] ?? SYSTEM_HOMES.find((s) => labels.includes(s));
}

function depth(label: string): number {
  return label.split('/').length;
}

/** A label as an IMAP keyword (an atom, RFC 3501 9: flag-keyword). */
export function labelKeyword(label: string): string {
  if (label === '\\Starred') return '\\Flagged';
  if (label.startsWith('\\')) return `$${label.slice(1)}`;
  return encodeUtf7(label).replace(/[\s(){%*"\\\]\x00-\x1f\x7f]/g, '_');
}
