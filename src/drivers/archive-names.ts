import { MailferryError } from '../domain/errors.js';
import { isInbox, pathComponents, type MailboxInfo } from '../domain/message.js';
import { NAMES_FILE } from '../state/files.js';
import { defaultPlace, escapeComponent, foldName, NAME_MAX, reservedChars, shortComponent, type ArchiveLayout } from './archive-paths.js';

/**
 * One folder, one place on disk. Every source folder gets a place (its components' on-disk forms,
 * see placePath) that no other folder shares, also on a case-insensitive or normalising file
 * system (macOS, Windows), and that is none of the names the layout uses itself:
 *
 * - A folder keeps its plain form (escapeComponent, today's name) unless that is taken. Siblings
 *   collide when their forms fold to one key (foldName: `Work`/`work`, NFC/NFD `Café`, `INBOX/x`
 *   and `Inbox/x` whose plain forms are both `INBOX`), when a form is reserved (layout fs: `cur`,
 *   `new`, `tmp`, `maildirfolder`, `subscriptions`, `dovecot*` files beside each folder's own
 *   messages; Maildir++: the joined name of a state file, `.mailferry-state.json`), and in the mbox
 *   layout also when one's `.sbd` directory is the other's file (`x` with children and `x.sbd`).
 *   Folders of different delimiters are different folders (`a/b` with '/' and `a.b` with '.').
 * - The others get the first variant that is free: the first 1, 2, ... characters escaped as well
 *   (`\49nbox`, `\77ork`, `\63ur`): still listescape, still unescaping to the folder's own name,
 *   so Dovecot (with listescape) and our archive Source read the original name back.
 * - A form longer than a file name may be (NAME_MAX, 255 bytes of UTF-8, less what the layout adds
 *   around it: `.sbd` in mbox; in Maildir++ the whole `.A.B` name, parents included, is one file
 *   name) is shortened (archive-paths.ts shortComponent: a readable prefix, `~`, a hash of the
 *   name; its variants hash the variant number too). It does not read back as the name: the
 *   sink records it in the state's places and the archive's names file (state/names-file.ts).
 *   A folder with no room left for a name at all (Maildir++ nested that deep) gets no place:
 *   `placeOf` throws a `mailbox` error naming why, so that folder is skipped and the rest goes on.
 * - Stable: places already recorded in the archive's state (its `places`, or the plain form for a
 *   folder recorded without one, as in every archive written before this) are kept first, also
 *   when they only differ in case (they worked on that file system); only a place two
 *   recorded folders shared (an archive merged by an older version) is given up by one of them,
 *   which `moved()` reports so that its sink starts that folder afresh. Among new folders the one
 *   whose name is its plain form wins, then the NFC one, then the lower code-unit order.
 *
 * `plan()` may be called again with more folders (an `open` the pipeline did not plan); places
 * handed out are never changed.
 */
export interface RecordedFolder {
  /** The state's key: the source path. */
  readonly path: string;
  readonly delimiter?: string;
  readonly place?: readonly string[];
}

interface Node {
  readonly raw: string;
  form?: string;
  /** Why this folder (or a parent) has no place on disk. */
  unplaced?: string;
  readonly children: Map<string, Node>;
  /** The children's own forms, and every name they occupy, folded (new places avoid both). */
  readonly exact: Set<string>;
  readonly folded: Set<string>;
}

/** fs layout: names inside every Maildir folder (ours and Dovecot's) a child folder must not take. */
const FS_RESERVED = new Set(['cur', 'new', 'tmp', 'maildirfolder', 'subscriptions', 'dovecot-keywords', 'dovecot-uidlist']);
/** Maildir++: files at the root whose names a `.A.B` folder could spell. */
const ROOT_FILES = new Set(['.mailferry-state.json', '.mailferry-state.json.journal', '.mailferry.lock', NAMES_FILE]);

const newNode = (raw: string): Node => ({ raw, children: new Map(), exact: new Set(), folded: new Set() });

export class ArchiveNames {
  private readonly root = newNode('');
  private readonly places = new Map<string, string[]>();
  private readonly unplaced = new Map<string, string>();
  private readonly movedPaths = new Set<string>();

  /**
   * `recorded`: the archive state's folders; `current`: the source's mailboxes, whose delimiters
   * serve for recorded folders that do not say theirs (else the most common one, else '/').
   */
  constructor(
    private readonly layout: ArchiveLayout,
    recorded: readonly RecordedFolder[],
    current: readonly Pick<MailboxInfo, 'path' | 'delimiter'>[] = [],
  ) {
    const delimiterOf = new Map(current.map((m) => [m.path, m.delimiter]));
    const guess = dominant(current.map((m) => m.delimiter)) ?? '/';
    const entries = recorded.map((r) => {
      const delimiter = r.delimiter ?? delimiterOf.get(r.path) ?? guess;
      return { path: r.path, delimiter, place: r.place ?? defaultPlace(layout, { path: r.path, delimiter }), own: r.place !== undefined };
    });
    // Recorded places first, then plain ones, the preferred names first.
    const plainOf = (e: { path: string; delimiter: string; place: readonly string[] }): boolean =>
      e.place.join('\0') === (isInbox(e.path) ? ['INBOX'] : pathComponents(e)).join('\0');
    entries.sort((a, b) => Number(b.own) - Number(a.own) || prefer(a.path, plainOf(a), b.path, plainOf(b)));
    for (const e of entries) {
      if (!this.pin(e, e.place)) this.movedPaths.add(e.path);
    }
  }

  /** Give every mailbox of `mailboxes` a place (those that have one keep it). */
  plan(mailboxes: readonly Pick<MailboxInfo, 'path' | 'delimiter'>[]): void {
    const leaves: [Pick<MailboxInfo, 'path' | 'delimiter'>, Node[]][] = [];
    for (const m of mailboxes) {
      if (this.places.has(m.path) || this.unplaced.has(m.path)) continue;
      leaves.push([m, this.chain(m)]);
    }
    this.assign(this.root, []);
    for (const [m, nodes] of leaves) {
      const lost = nodes.find((n) => n.unplaced !== undefined)?.unplaced;
      if (lost === undefined) this.places.set(m.path, nodes.map((n) => n.form as string));
      else this.unplaced.set(m.path, lost);
    }
  }

  /** The place of a mailbox (planning it alone when it was not planned); a `mailbox` error when it has none. */
  placeOf(mailbox: Pick<MailboxInfo, 'path' | 'delimiter'>): string[] {
    if (!this.places.has(mailbox.path) && !this.unplaced.has(mailbox.path)) this.plan([mailbox]);
    const place = this.places.get(mailbox.path);
    if (place === undefined) throw new MailferryError('mailbox', this.unplaced.get(mailbox.path) ?? 'no place in the archive');
    return place;
  }

  /** True when `path` had a recorded place it now shares with another folder and so lost. */
  moved(path: string): boolean {
    return this.movedPaths.has(path);
  }

  /** The nodes of a mailbox's components, created as needed; [] for a Maildir's INBOX. */
  private chain(m: Pick<MailboxInfo, 'path' | 'delimiter'>): Node[] {
    const raws = isInbox(m.path) ? ['INBOX'] : pathComponents(m);
    if (this.layout !== 'mbox' && raws.length === 1 && raws[0] === 'INBOX') return [];
    const out: Node[] = [];
    let parent = this.root;
    for (const [i, raw] of raws.entries()) {
      // INBOX at the top is one folder whatever delimiter its children use.
      const delimiter = i === 0 && raw === 'INBOX' ? '' : m.delimiter;
      const id = `${delimiter}\0${raw}`;
      let node = parent.children.get(id);
      if (node === undefined) {
        node = newNode(raw);
        parent.children.set(id, node);
      }
      out.push(node);
      parent = node;
    }
    return out;
  }

  /** Take a recorded place; false when a part of it is taken by another folder or reserved. */
  private pin(m: Pick<MailboxInfo, 'path' | 'delimiter'>, place: readonly string[]): boolean {
    const nodes = this.chain(m);
    if (nodes.length !== place.length) return false;
    let parent = this.root;
    const forms: string[] = [];
    for (const [i, node] of nodes.entries()) {
      const form = place[i] as string;
      if (node.form === undefined) {
        // An older archive's place stays where it is unless another folder holds the very same name.
        if (this.reserved(forms, form, true) || parent.exact.has(form)) return false;
        this.take(parent, node, form);
      } else if (node.form !== form) {
        return false;
      }
      forms.push(form);
      parent = node;
    }
    this.places.set(m.path, [...place]);
    return true;
  }

  private assign(parent: Node, forms: string[]): void {
    const open = [...parent.children.values()].filter((n) => n.form === undefined && n.unplaced === undefined);
    open.sort((a, b) => prefer(a.raw, this.plain(a, forms) === a.raw, b.raw, this.plain(b, forms) === b.raw));
    const budget = this.budget(forms);
    for (const node of open) {
      const chars = [...node.raw].length;
      let chosen: string | undefined;
      let room = true;
      for (let k = 0; k <= chars && chosen === undefined && room; k++) {
        let form: string | undefined = k === 0 ? this.plain(node, forms) : escapeComponent(node.raw, reservedChars(this.layout), k);
        if (Buffer.byteLength(form) > budget) form = shortComponent(node.raw, reservedChars(this.layout), budget, k);
        if (form === undefined) room = false;
        else if (this.reserved(forms, form, false)) continue;
        else if (this.occupies(form).some((n) => parent.folded.has(foldName(n)))) continue;
        else chosen = form;
      }
      if (chosen !== undefined) this.take(parent, node, chosen);
      else this.unplace(node, room ? 'no free name for it in the archive' : this.tooLong());
    }
    for (const node of parent.children.values()) {
      if (node.form !== undefined) this.assign(node, [...forms, node.form]);
    }
  }

  /** The bytes a component's form may take under `parents`: NAME_MAX, less what the layout adds. */
  private budget(parents: readonly string[]): number {
    if (this.layout === 'fs') return NAME_MAX;
    if (this.layout === 'mbox') return NAME_MAX - '.sbd'.length;
    return NAME_MAX - Buffer.byteLength(`.${parents.map((p) => `${p}.`).join('')}`);
  }

  private tooLong(): string {
    const why = this.layout === 'maildir++' ? ' (Maildir++ puts a folder and all its parents in one name; --layout fs does not)' : '';
    return `its name is too long for the archive: no room left within a file name's ${NAME_MAX} bytes${why}`;
  }

  /** `node` and every folder below it have no place. */
  private unplace(node: Node, reason: string): void {
    node.unplaced = reason;
    for (const child of node.children.values()) this.unplace(child, reason);
  }

  private plain(node: Node, parents: readonly string[]): string {
    if (parents.length === 0 && isInbox(node.raw)) return 'INBOX';
    return escapeComponent(node.raw, reservedChars(this.layout));
  }

  private take(parent: Node, node: Node, form: string): void {
    node.form = form;
    parent.exact.add(form);
    for (const n of this.occupies(form)) parent.folded.add(foldName(n));
  }

  /** The names a folder of this form takes in its parent directory. */
  private occupies(form: string): string[] {
    return this.layout === 'mbox' ? [form, `${form}.sbd`] : [form];
  }

  /**
   * A name the layout uses itself. `recorded`: an older archive's place, refused only when it is
   * such a name exactly (on its case-sensitive file system it worked otherwise); a new place also
   * avoids case and normalisation variants, and every `dovecot*` name.
   */
  private reserved(parents: readonly string[], form: string, recorded: boolean): boolean {
    const key = (n: string): string => (recorded ? n : foldName(n));
    if (this.layout === 'fs') return FS_RESERVED.has(key(form)) || (!recorded && /^dovecot[.-]/.test(key(form)));
    if (this.layout === 'maildir++') return ROOT_FILES.has(key(`.${[...parents, form].join('.')}`));
    return false;
  }
}

/** Order of preference: a name that is its own plain form, then an NFC one, then code units. */
function prefer(a: string, aPlain: boolean, b: string, bPlain: boolean): number {
  const rank = (name: string, plain: boolean): number => (plain ? 0 : 2) + (name === name.normalize('NFC') ? 0 : 1);
  return rank(a, aPlain) - rank(b, bPlain) || (a < b ? -1 : a > b ? 1 : 0);
}

function dominant(values: readonly string[]): string | undefined {
  const counts = new Map<string, number>();
  for (const v of values) if (v !== '') counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: string | undefined;
  for (const [v, n] of counts) if (best === undefined || n > (counts.get(best) ?? 0)) best = v;
  return best;
}
