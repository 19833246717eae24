import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelsOfViews, type View } from '../../src/drivers/maildir/gmail-archive.js';

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
