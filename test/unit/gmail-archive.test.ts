import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelsOfViews, type View } from '../../src/drivers/maildir/gmail-archive.js';
import { labelsHeader, parseLabelsHeader } from '../../src/formats/mbox.js';

const v = (delimiter: string, ...sets: string[][]): View => ({ delimiter, sets });

test('the label a Maildir label folder shows: INBOX, a user label by its name, a system one by elimination', () => {
  const got = labelsOfViews(
    new Map([
      ['INBOX', v('/', ['\\Inbox'], ['\\Inbox', '\\Starred', 'Work'])],
      ['Work', v('/', ['\\Inbox', '\\Starred', 'Work'])],
      ['Work.Projects', v('.', ['\\Sent', 'Work/Projects'])],
      ['[Gmail]/Starred', v('/', ['\\Inbox', '\\Starred', 'Work'])],
      ['[Gmail]/Sent Mail', v('/', ['\\Sent', 'Work/Projects'])],
    ]),
  );
  assert.deepEqual(Object.fromEntries(got), {
    INBOX: '\\Inbox',
    Work: 'Work',
    'Work.Projects': 'Work/Projects',
    '[Gmail]/Starred': '\\Starred',
    '[Gmail]/Sent Mail': '\\Sent',
  });
});

test('two system labels on exactly the same messages cannot be told apart: both folders stay plain', () => {
  const got = labelsOfViews(
    new Map([
      ['[Gmail]/Starred', v('/', ['\\Important', '\\Starred'])],
      ['[Gmail]/Important', v('/', ['\\Important', '\\Starred'])],
    ]),
  );
  assert.deepEqual(Object.fromEntries(got), {});
});

test('X-Gmail-Labels read back: Takeout names to Gmail labels, quoted labels with commas and quotes', () => {
  const labels = ['\\Draft', '\\Inbox', '\\Important', '\\Sent', '\\Starred', 'Reisen/Köln 2024', 'a, "b"', 'x\\y'].sort();
  const line = labelsHeader(labels);
  assert.match(line, /^X-Gmail-Labels: Reisen\/Köln 2024,Drafts,Important,Inbox,Sent,Starred,"a, \\"b\\"",x\\y\n$/);
  assert.deepEqual(parseLabelsHeader(line.slice('X-Gmail-Labels: '.length, -1)), labels);
  assert.deepEqual(parseLabelsHeader(''), []);
});
