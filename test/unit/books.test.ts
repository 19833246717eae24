import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeBooks } from '../../src/pipeline/books.js';
import { RunReport } from '../../src/report.js';
import { EXIT } from '../../src/domain/errors.js';

/** The end-of-run invariant: planned = copied + skipped + vanished + not copied (full) + held back. */
function report(counts: Partial<Pick<RunReport, 'planned' | 'messages' | 'skippedMessages' | 'vanished' | 'notCopied' | 'held' | 'filtered'>>): RunReport {
  return Object.assign(new RunReport(), counts);
}

test('balanced books: no entry, exit 0 (filtered messages are outside the plan)', () => {
  const r = report({ planned: 10, messages: 6, skippedMessages: 1, vanished: 1, notCopied: 1, held: 1, filtered: 7 });
  r.skipped.push({ mailbox: 'INBOX', id: '4', reason: 'refused by the sink' });
  assert.equal(closeBooks(r), 0);
  assert.equal(r.skipped.length, 1);
  assert.equal(closeBooks(report({ planned: 0 })), 0);
  assert.equal(report({ planned: 3, messages: 3 }).exitCode, EXIT.ok);
});

test('a gap: planned messages nobody accounted for become a skipped entry, and exit 0 is impossible', () => {
  const r = report({ planned: 400, messages: 372, vanished: 2 });
  assert.equal(r.exitCode, EXIT.ok, 'before the check the report looks complete');
  assert.equal(closeBooks(r), 26);
  assert.equal(r.exitCode, EXIT.partial);
  assert.equal(r.skipped.length, 1);
  assert.match(r.skipped[0]?.reason ?? '', /26 of 400 planned messages were neither copied nor reported/);
});

test('counted twice: the books do not balance either, the run is not vouched for', () => {
  const r = report({ planned: 5, messages: 5, vanished: 1 });
  assert.equal(closeBooks(r), -1);
  assert.equal(r.exitCode, EXIT.partial);
  assert.match(r.skipped[0]?.reason ?? '', /1 more messages counted than the 5 planned/);
});

test('held back (a spent budget, a dry run) balances: the budget exit code still says so', () => {
  const r = report({ planned: 5, messages: 2, held: 3 });
  assert.equal(closeBooks(r), 0);
  r.budgetReached = true;
  assert.equal(r.exitCode, EXIT.budget);
});
