import { test } from 'node:test';
import assert from 'node:assert/strict';
import { homeLabel, labelKeyword } from '../../src/sources/label-homes.js';

test('the home of a message: the deepest user label (first by name among equals), else Sent, Drafts, INBOX, else none', () => {
  assert.equal(homeLabel(['\\Inbox', 'Work', 'Work/Projects']), 'Work/Projects');
  assert.equal(homeLabel(['Work/Projects', 'Reisen/Köln 2024']), 'Reisen/Köln 2024');
  assert.equal(homeLabel(['\\Inbox', '\\Sent']), '\\Sent');
  assert.equal(homeLabel(['\\Inbox', '\\Draft']), '\\Draft');
  assert.equal(homeLabel(['\\Inbox']), '\\Inbox');
  assert.equal(homeLabel([]), undefined);
});

test('a label as an IMAP keyword: an atom, non-ASCII in modified UTF-7, Starred as \\Flagged', () => {
  assert.equal(labelKeyword('\\Starred'), '\\Flagged');
  assert.equal(labelKeyword('\\Important'), '$Important');
  assert.equal(labelKeyword('\\Inbox'), '$Inbox');
  assert.equal(labelKeyword('Work/Projects'), 'Work/Projects');
  assert.equal(labelKeyword('Rechnungen bezahlt'), 'Rechnungen_bezahlt');
  assert.equal(labelKeyword('Reisen/Köln 2024'), 'Reisen/K&APY-ln_2024');
  assert.equal(labelKeyword('a(b)"c"%*]{x}\\y & z'), 'a_b__c_____x}_y_&-_z');
});
