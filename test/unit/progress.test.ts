import { test } from 'node:test';
import assert from 'node:assert/strict';
import { progressLine, ttyProgress } from '../../src/progress.js';
import { RunReport } from '../../src/report.js';

function fakeStream(columns: number): { stream: NodeJS.WriteStream; written: string[] } {
  const written: string[] = [];
  const stream = { columns, write: (s: string) => written.push(s) > 0 } as unknown as NodeJS.WriteStream;
  return { stream, written };
}

test('the TTY line shows the folder done/planned and the whole run with rate and ETA', () => {
  const r = new RunReport();
  r.planned = 300;
  r.plannedBytes = 30e6;
  let clock = 0;
  const { stream, written } = fakeStream(120);
  const p = ttyProgress(stream, () => clock);
  p.update(r, { type: 'planned', mailbox: 'INBOX', messages: 100, bytes: 10e6 });
  p.update(r, { type: 'planned', mailbox: 'Archive/2019', messages: 200, bytes: 20e6 });
  clock = 1000;
  r.messages = 50;
  r.bytes = 5e6;
  p.update(r, { type: 'batch', mailbox: 'Archive/2019', messages: 50, bytes: 5e6 });
  const line = written.at(-1) ?? '';
  assert.ok(line.startsWith('\r\x1b[K'), 'redraws in place');
  assert.match(line, /Archive\/2019 50\/200 · all 50\/300 msgs, 5\.0\/30\.0 MB, [\d.]+ MB\/s, ETA \d+ (s|min)$/);
  // Redrawn at most 5 times a second.
  const before = written.length;
  clock = 1100;
  p.update(r, { type: 'batch', mailbox: 'INBOX', messages: 10, bytes: 1e6 });
  assert.equal(written.length, before);
  clock = 1300;
  r.messages = 70;
  p.update(r, { type: 'batch', mailbox: 'INBOX', messages: 10, bytes: 1e6 });
  assert.match(written.at(-1) ?? '', /INBOX 20\/100 · all 70\/300/);
  p.done();
  assert.equal(written.at(-1), '\r\x1b[K', 'the line is cleared at the end');
});

test('a narrow terminal shortens the folder name, never the counts', () => {
  const r = new RunReport();
  r.planned = 10;
  const line = progressLine(r, 'Projects/Client A/Reports/Quarterly/2024', { planned: 10, done: 3 }, 70);
  assert.ok(line.length < 70, line);
  assert.match(line, /^….* 3\/10 · all 0\/10 msgs/);
});
