import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFlagSets, decodeUidRuns, encodeFlagSets, encodeUidRuns, flagKey } from '../../src/state/synced.js';

test('flagKey: sorted, \\Recent dropped, duplicates once', () => {
  assert.equal(flagKey(['\\Seen', '$Work', '\\Recent', '\\Answered', '\\Seen']), '$Work \\Answered \\Seen');
  assert.equal(flagKey([]), '');
});

test('flag sets: grouped by set, round trip', () => {
  const flags = new Map([['1', '\\Seen'], ['2', '\\Seen'], ['3', ''], ['4', '\\Seen'], ['a.M1P2', '$X \\Seen']]);
  const json = encodeFlagSets(flags);
  assert.deepEqual(json, { '': { uids: '3' }, '$X \\Seen': { names: ['a.M1P2'] }, '\\Seen': { uids: '1:2,4' } });
  assert.deepEqual(decodeFlagSets(json), flags);
});

test('target UIDs: runs of consecutive pairs, names one each, round trip', () => {
  const uids = new Map([['1', 10], ['2', 11], ['3', 12], ['7', 13], ['8', 20], ['x', 5]]);
  const json = encodeUidRuns(uids);
  assert.deepEqual(json, [[1, 10, 3], [7, 13, 1], [8, 20, 1], ['x', 5, 1]]);
  assert.deepEqual(decodeUidRuns(json), uids);
});
