import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MailboxInfo } from '../../src/domain/message.js';
import { MailferryError } from '../../src/domain/errors.js';
import { ArchiveNames } from '../../src/drivers/archive-names.js';
import { escapeComponent, unescapeComponent } from '../../src/drivers/archive-paths.js';

const box = (path: string, delimiter = '/'): MailboxInfo => ({ path, delimiter });
const places = (n: ArchiveNames, boxes: MailboxInfo[]): Record<string, string> =>
  Object.fromEntries(boxes.map((b) => [b.path, n.placeOf(b).join('|')]));

test('a variant escapes more leading characters, one \\NN per UTF-8 byte, and unescapes to the same name', () => {
  assert.equal(escapeComponent('Work', '', 1), '\\57ork');
  assert.equal(escapeComponent('Почта', '', 1), '\\d0\\9fочта');
  for (const name of ['Work', 'Почта', 'Cafe\u0301', 'a.b', '~x']) {
    for (let k = 0; k <= [...name].length; k++) assert.equal(unescapeComponent(escapeComponent(name, '.', k)), name);
  }
});

test('an archive of an older version keeps its names: recorded plain places are kept first', () => {
  // An older version wrote `work` (no delimiter, no place recorded); `Work` is new.
  const n = new ArchiveNames('maildir++', [{ path: 'work' }], [box('Work'), box('work')]);
  n.plan([box('Work'), box('work')]);
  assert.deepEqual(places(n, [box('Work'), box('work')]), { Work: '\\57ork', work: 'work' });
  assert.equal(n.moved('work'), false);
  // Two older entries that only differ in case worked on its (case-sensitive) file system: both stay.
  const both = new ArchiveNames('fs', [{ path: 'work' }, { path: 'Work' }], [box('Work'), box('work')]);
  both.plan([box('Work'), box('work')]);
  assert.deepEqual(places(both, [box('Work'), box('work')]), { Work: 'Work', work: 'work' });
});

test('a place two older entries shared is kept by the preferred one; the other moves', () => {
  const n = new ArchiveNames('mbox', [{ path: 'Inbox/x' }, { path: 'INBOX/x' }], [box('INBOX/x'), box('Inbox/x')]);
  n.plan([box('INBOX/x'), box('Inbox/x')]);
  assert.deepEqual(places(n, [box('INBOX/x'), box('Inbox/x')]), { 'INBOX/x': 'INBOX|x', 'Inbox/x': '\\49nbox|x' });
  assert.equal(n.moved('Inbox/x'), true);
  assert.equal(n.moved('INBOX/x'), false);
  // --layout fs: a folder `cur` an older version put inside INBOX's own cur/ moves out.
  const fs = new ArchiveNames('fs', [{ path: 'cur' }], [box('cur')]);
  assert.deepEqual(places(fs, [box('cur')]), { cur: '\\63ur' });
  assert.equal(fs.moved('cur'), true);
});

test('recorded places are stable whatever order and company the folders come in', () => {
  const all = [box('Cafe\u0301'), box('Caf\u00e9'), box('x.sbd'), box('x/y'), box('new')];
  const first = new ArchiveNames('mbox', []);
  first.plan([...all].reverse());
  const recorded = all.map((b) => ({ path: b.path, delimiter: '/', place: first.placeOf(b) }));
  const later = new ArchiveNames('mbox', recorded, [box('x')]);
  later.plan([box('x'), ...all]);
  assert.deepEqual(places(later, all), places(first, all));
  assert.deepEqual(places(later, [box('x')]), { x: 'x' });
  assert.equal(places(first, [box('Caf\u00e9')])['Caf\u00e9'], 'Caf\u00e9', 'the NFC name keeps the plain form');
});

test('a form over a file name (255 bytes, less .sbd in mbox; the whole .A.B in Maildir++) is shortened to 100 bytes: a prefix, ~ and a hash', () => {
  const bytes = (s: string): number => Buffer.byteLength(s);
  const long = 'x'.repeat(300);
  const cjk = '漢'.repeat(90); // 270 bytes of UTF-8
  for (const layout of ['fs', 'mbox', 'maildir++'] as const) {
    const n = new ArchiveNames(layout, []);
    n.plan([box(long), box(cjk), box(`${long}/${cjk}`), box('short')]);
    const limit = layout === 'mbox' ? 251 : layout === 'fs' ? 255 : 254;
    const [a] = n.placeOf(box(long));
    assert.match(a ?? '', /^x+~[0-9a-f]{16}$/);
    assert.equal(bytes(a ?? ''), 100);
    assert.match(n.placeOf(box(cjk))[0] ?? '', /^漢+~[0-9a-f]{16}$/);
    assert.ok(bytes(n.placeOf(box(cjk))[0] ?? '') <= 100);
    const nested = n.placeOf(box(`${long}/${cjk}`));
    assert.equal(nested[0], a, 'the parent keeps its place');
    if (layout === 'maildir++') assert.ok(bytes(`.${nested.join('.')}`) <= 255);
    else assert.ok(nested.every((f) => bytes(f) <= limit));
    assert.deepEqual(n.placeOf(box('short')), ['short'], 'a name that fits is kept as it is');
  }
  // Stable: the same name, the same form, in any company.
  const again = new ArchiveNames('fs', []);
  again.plan([box(long)]);
  const first = new ArchiveNames('fs', []);
  first.plan([box('a'), box(long), box(cjk)]);
  assert.deepEqual(again.placeOf(box(long)), first.placeOf(box(long)));
});

test('two long names that shorten alike (case) get forms a case-insensitive file system keeps apart', () => {
  const upper = `${'W'.repeat(300)}`;
  const lower = `${'w'.repeat(300)}`;
  const n = new ArchiveNames('fs', []);
  n.plan([box(upper), box(lower)]);
  const a = (n.placeOf(box(upper))[0] ?? '').toLowerCase();
  const b = (n.placeOf(box(lower))[0] ?? '').toLowerCase();
  assert.notEqual(a, b);
  assert.ok(Buffer.byteLength(a) <= 255 && Buffer.byteLength(b) <= 255);
});

test('Maildir++ with no room left for a name: that folder (and those below it) gets none, as a mailbox error', () => {
  const parent = 'p'.repeat(200);
  const n = new ArchiveNames('maildir++', []);
  const deep = `${parent}/${'q'.repeat(52)}/r`; // .p….q…. is 255 bytes already
  n.plan([box(parent), box(deep), box('other')]);
  assert.deepEqual(n.placeOf(box('other')), ['other']);
  assert.throws(() => n.placeOf(box(deep)), (e: unknown) => e instanceof MailferryError && e.kind === 'mailbox' && /too long/.test(e.message));
  assert.throws(() => n.placeOf(box(`${deep}/s`)), (e: unknown) => e instanceof MailferryError && e.kind === 'mailbox');
});
