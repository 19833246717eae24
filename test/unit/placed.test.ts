import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePlaced, encodePlaced, joinRuns, place, placedIds, type PlacedRun } from '../../src/state/placed.js';

/** An mbox archive's record of where its messages are (state/placed.ts): runs, expanded over the file's offsets. */
test('consecutive ids written one after another are one run; other ids, UIDLs and gaps start new ones', () => {
  const runs: PlacedRun[] = [];
  for (const [id, at] of [['5', 0], ['6', 100], ['7', 250], ['9', 300], ['uidl-a', 420], ['10', 500]] as const) place(runs, id, at);
  assert.deepEqual(runs, [
    { at: 0, id: '5', count: 3 },
    { at: 300, id: '9', count: 1 },
    { at: 420, id: 'uidl-a', count: 1 },
    { at: 500, id: '10', count: 1 },
  ]);
  const json = encodePlaced(runs);
  assert.deepEqual(json, [[0, 5, 3], [300, 9, 1], [420, 'uidl-a', 1], [500, 10, 1]]);
  assert.deepEqual(decodePlaced(JSON.parse(JSON.stringify(json))), runs);
  // A foreign message at 280 between the runs; one run starts where no message does (ignored).
  const ids = placedIds([...runs, { at: 999, id: '1', count: 2 }], [0, 100, 250, 280, 300, 420, 500]);
  assert.deepEqual([...ids], [[0, '5'], [100, '6'], [250, '7'], [300, '9'], [420, 'uidl-a'], [500, '10']]);
  // A run longer than the file holds gives what is there.
  assert.deepEqual([...placedIds([{ at: 0, id: '1', count: 5 }], [0, 10])], [[0, '1'], [10, '2']]);
});

test('a malformed record is refused', () => {
  for (const bad of [{}, [[0, 1]], [[0, 1, 0]], [['0', 1, 1]], [[0, null, 1]], [[0, 1, 1, 1]]]) assert.equal(decodePlaced(bad), undefined, JSON.stringify(bad));
});

test('joinRuns: a transaction written right after the last run, its ids going on, extends that run; otherwise its runs follow', () => {
  const one = [{ at: 0, id: '1', count: 12 }];
  const next = [{ at: 9760, id: '13', count: 2 }];
  assert.deepEqual(joinRuns(one, next, true), [{ at: 0, id: '1', count: 14 }], 'two batches record what one batch records');
  assert.deepEqual(joinRuns(one, next, false), [...one, ...next], 'not written right after: the runs stay apart');
  assert.deepEqual(joinRuns(one, [{ at: 9760, id: '14', count: 2 }], true), [...one, { at: 9760, id: '14', count: 2 }], 'an id left out: apart');
  assert.deepEqual(joinRuns([{ at: 0, id: 'a1', count: 1 }], [{ at: 50, id: 'a2', count: 1 }], true).length, 2, 'UIDLs never join');
  assert.deepEqual(one, [{ at: 0, id: '1', count: 12 }], 'the recorded runs are not changed in place');
});
