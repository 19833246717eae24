import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MailboxInfo } from '../../src/domain/message.js';
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
