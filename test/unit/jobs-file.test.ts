import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobsCommandLine, jobsFileRows } from '../../src/batch/file.js';

test('a jobs list: each job a row with the shared keys as defaults; the run\'s own flags stay out of the rows', () => {
  const { rows, problems } = jobsFileRows({ quiet: true, logFile: '/x.log', ca: '/ca.pem', jobs: [{ command: 'backup', from: 'a' }, { command: 'backup', from: 'b', ca: '/other.pem' }, 'nope'] });
  assert.deepEqual(problems, ['job 3: must be a JSON object of flags']);
  assert.deepEqual(
    rows.map((r) => [r.row, r.line, r.data]),
    [
      [1, 0, { ca: '/ca.pem', command: 'backup', from: 'a' }],
      [2, 0, { ca: '/other.pem', command: 'backup', from: 'b' }],
    ],
  );
  assert.deepEqual(jobsFileRows({ jobs: [] }).problems, ['"jobs" must be a list of job objects (one per job: a "command" and its flags)']);
});

test('mailferry --config FILE with a jobs list becomes a batch of one job at a time; a job file of one job is left alone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mf-jobs-'));
  const many = join(dir, 'many.json');
  writeFileSync(many, JSON.stringify({ quiet: true, jobs: [{ command: 'backup' }] }));
  assert.deepEqual(jobsCommandLine(many, ['--config', many, '--json']), ['batch', many, '--jobs', '1', '--of-config', '--quiet', '--json']);
  assert.deepEqual(jobsCommandLine(many, [`--config=${many}`]), ['batch', many, '--jobs', '1', '--of-config', '--quiet']);
  assert.throws(() => jobsCommandLine(many, ['backup', '--config', many]), /holds several jobs/);
  const one = join(dir, 'one.json');
  writeFileSync(one, JSON.stringify({ command: 'backup', from: 'x' }));
  assert.equal(jobsCommandLine(one, ['--config', one]), undefined);
  assert.equal(jobsCommandLine(join(dir, 'missing.json'), []), undefined);
});
