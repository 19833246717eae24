import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UidValidities } from '../../src/drivers/imap/uid-validity.js';

test('a usable UIDVALIDITY is kept; none, or zero, gets one stand-in per run, below zero, warned once per folder', () => {
  const warned: string[] = [];
  const run = new UidValidities((p) => warned.push(p));
  assert.equal(run.of('INBOX', 7n), 7n);
  assert.equal(run.of('INBOX', 9_999_999_999_999_999_999n), 9_999_999_999_999_999_999n);
  const standIn = run.of('A', undefined);
  assert.ok(standIn < 0n);
  assert.equal(run.of('A', undefined), standIn, 'the same within a run');
  assert.equal(run.of('B', 0n), standIn);
  assert.deepEqual(warned, ['A', 'B']);
  assert.notEqual(new UidValidities(() => undefined).of('A', undefined), standIn, 'another run, another stand-in');
});
