import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunReport } from '../../src/report.js';

/** `--labels folders`: the summary and the --json report say how many copies labels made (sources/label-copies.ts). */
test('the summary and --json name the extra copies made for labels, and say nothing when no folder was a label', () => {
  const r = new RunReport();
  r.messages = 1204;
  r.labelCopies = 310;
  assert.match(r.summary(), /1204 messages copied \(0\.0 MB\), 310 of them extra copies for labels,/);
  assert.equal(r.toJSON()['labelCopies'], 310);
  const plain = new RunReport();
  plain.messages = 3;
  assert.doesNotMatch(plain.summary(), /labels/);
  assert.equal('labelCopies' in plain.toJSON(), false);
});
