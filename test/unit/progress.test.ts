import { test } from 'node:test';
import assert from 'node:assert/strict';
import { displayWidth, progressLine, ttyProgress } from '../../src/progress.js';
import { Screen } from '../helpers/screen.js';
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
  const line = progressLine(r, { folder: 'Projects/Client A/Reports/Quarterly/2024', count: { planned: 10, done: 3 } }, 70);
  assert.ok(line.length < 70, line);
  assert.match(line, /^….* 3\/10 · all 0\/10 msgs/);
});

test('at 80 columns a CJK folder name never wraps the line: the screen keeps one progress row, no stale copies', () => {
  const r = new RunReport();
  r.planned = 3553;
  r.plannedBytes = 812e6;
  let clock = 0;
  const screen = new Screen(80);
  const stream = { columns: 80, write: (s: string) => (screen.write(s), true) } as unknown as NodeJS.WriteStream;
  const p = ttyProgress(stream, () => clock);
  const cjk = '工作/项目/二〇二四年第三季度的客户报告与会议纪要以及其他所有相关的文件资料汇编归档目录';
  for (let i = 1; i <= 20; i++) {
    clock += 250;
    r.messages = i * 10;
    r.bytes = i * 2e6;
    p.update(r, { type: i === 1 ? 'planned' : 'batch', mailbox: i % 2 === 0 ? cjk : 'INBOX', messages: 10, bytes: 2e6 });
  }
  assert.equal(screen.text().length, 1, `rows: ${JSON.stringify(screen.text())}`);
  assert.ok(displayWidth(screen.text()[0] ?? '') < 80);
  assert.match(screen.text()[0] ?? '', /^…[^ ]*归档目录 \d+\/\d+ · all 200\/3553 msgs/);
  p.done();
  assert.deepEqual(screen.text(), ['']);
});

test('a warning during progress lands on a fresh line above the progress line, which is redrawn under it', () => {
  const r = new RunReport();
  r.planned = 10;
  let clock = 0;
  const screen = new Screen(80);
  const stream = { columns: 80, write: (s: string) => (screen.write(s), true) } as unknown as NodeJS.WriteStream;
  const p = ttyProgress(stream, () => clock);
  p.update(r, { type: 'planned', mailbox: 'INBOX', messages: 10, bytes: 0 });
  p.above('warning: skipped INBOX message 7: bad date');
  clock += 500;
  r.messages = 5;
  p.update(r, { type: 'batch', mailbox: 'INBOX', messages: 5, bytes: 0 });
  p.above('warning: second');
  const rows = screen.text();
  assert.deepEqual(rows.slice(0, 2), ['warning: skipped INBOX message 7: bad date', 'warning: second']);
  assert.match(rows[2] ?? '', /^INBOX 5\/10 · all 5\/10 msgs/);
  assert.equal(rows.length, 3);
  p.done();
  assert.deepEqual(screen.text(), ['warning: skipped INBOX message 7: bad date', 'warning: second', '']);
});

test('a folder name with control characters cannot drive the terminal', () => {
  const r = new RunReport();
  const line = progressLine(r, { folder: 'evil\x1b]0;owned\x07\r\nname', count: { planned: 1, done: 0 } }, 100);
  assert.doesNotMatch(line, /\p{Cc}/u);
  assert.match(line, /^evil\?\]0;owned\?\?\?name 0\/1/);
});

/** A ttyProgress on a modelled 80-column screen, with a clock the test moves. */
function onScreen(): { screen: Screen; p: ReturnType<typeof ttyProgress>; tick: (ms: number) => void; writes: () => number } {
  let clock = 0;
  let writes = 0;
  const screen = new Screen(80);
  const stream = { columns: 80, write: (s: string) => (screen.write(s), writes++, true) } as unknown as NodeJS.WriteStream;
  return { screen, p: ttyProgress(stream, () => clock), tick: (ms) => (clock += ms), writes: () => writes };
}

/** A folder planned, as the pipeline says it: its `planned` event, then the folders planned so far. */
function planned(p: ReturnType<typeof ttyProgress>, r: RunReport, mailbox: string, messages: number, bytes: number, folders: [number, number]): void {
  r.planned += messages;
  r.plannedBytes += bytes;
  p.update(r, { type: 'planned', mailbox, messages, bytes });
  p.update(r, { type: 'planning', plannedFolders: folders[0], folders: folders[1] });
}

test('the first seconds say what is happening: listing, then planning N/M folders, never a frozen 0/3', () => {
  const r = new RunReport();
  const { screen, p, tick } = onScreen();
  tick(1000);
  p.update(r, { type: 'listing' });
  assert.deepEqual(screen.text(), ['listing folders…']);
  tick(250);
  p.update(r, { type: 'planning', folders: 4, plannedFolders: 0 });
  assert.deepEqual(screen.text(), ['planning 0/4 folders']);
  tick(250);
  planned(p, r, 'INBOX', 3, 52.4e6, [1, 4]);
  tick(250);
  p.update(r, { type: 'bytes', mailbox: 'INBOX', streaming: 2.5e6 });
  assert.deepEqual(screen.text(), ['INBOX 0/3 · planning 1/4 folders · 0/3+ msgs, 2.5/52.4+ MB, 10.0 MB/s']);
});

test('bytes inside a message: the MB and MB/s move while it streams; no ETA until every folder is planned, then one', () => {
  const r = new RunReport();
  const { screen, p, tick } = onScreen();
  p.update(r, { type: 'listing' });
  p.update(r, { type: 'planning', folders: 2, plannedFolders: 0 });
  planned(p, r, 'INBOX', 1, 50e6, [1, 2]);
  const seen: string[] = [];
  // 50 MB at 5 MB/s: a bytes event every 250 ms.
  for (let i = 1; i <= 20; i++) {
    tick(250);
    p.update(r, { type: 'bytes', mailbox: 'INBOX', streaming: i * 1.25e6 });
    seen.push(screen.text()[0] ?? '');
  }
  const mbs = seen.map((l) => Number(/ ([\d.]+)\/[\d.]+\+? MB/.exec(l)?.[1]));
  assert.ok(mbs.every((m, i) => i === 0 || m > (mbs[i - 1] as number)), `MB shown: ${mbs.join(' ')}`);
  assert.match(seen.at(-1) ?? '', /^INBOX 0\/1 · planning 1\/2 folders · 0\/1\+ msgs, 25\.0\/50\.0\+ MB, 5\.0 MB\/s$/);
  assert.ok(seen.every((l) => !l.includes('ETA')), 'no ETA while a folder is still to be planned');
  // The last folder planned: the totals are final, and the ETA comes from the rate.
  planned(p, r, 'Work', 1, 10e6, [2, 2]);
  tick(250);
  p.update(r, { type: 'bytes', mailbox: 'INBOX', streaming: 26.25e6 });
  assert.match(screen.text()[0] ?? '', /^INBOX 0\/1 · all 0\/2 msgs, 26\.3\/60\.0 MB, 5\.0 MB\/s, ETA 7 s$/);
  // The message committed: its bytes move from `streaming` to the report, counted once.
  tick(250);
  r.messages = 1;
  r.bytes = 50e6;
  p.update(r, { type: 'batch', mailbox: 'INBOX', messages: 1, bytes: 50e6, streaming: 0 });
  assert.match(screen.text()[0] ?? '', /^INBOX 1\/1 · all 1\/2 msgs, 50\.0\/60\.0 MB/);
  p.done();
});

test('a large account still planning at 80 columns: the folder gives way, never the counts or the rate', () => {
  const r = new RunReport();
  r.messages = 5210;
  r.planned = 20000;
  r.bytes = 301.2e6;
  r.plannedBytes = 1018.5e6;
  const line = progressLine(r, { folder: 'Archive/2019', count: { planned: 1200, done: 312 }, rate: 38.4e6, planning: { planned: 12, folders: 150 } }, 80);
  assert.equal(line, 'planning 12/150 folders · 5210/20000+ msgs, 301.2/1018.5+ MB, 38.4 MB/s');
  const wide = progressLine(r, { folder: 'Archive/2019', count: { planned: 1200, done: 312 }, rate: 38.4e6, planning: { planned: 12, folders: 150 } }, 120);
  assert.equal(wide, 'Archive/2019 312/1200 · planning 12/150 folders · 5210/20000+ msgs, 301.2/1018.5+ MB, 38.4 MB/s');
});

test('a stall with no events: the line is redrawn each second, the rate falls and the ETA goes away', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const r = new RunReport();
  const { screen, p, tick, writes } = onScreen();
  p.update(r, { type: 'planning', folders: 1, plannedFolders: 0 });
  planned(p, r, 'INBOX', 1, 100e6, [1, 1]);
  for (let i = 1; i <= 40; i++) {
    tick(250);
    p.update(r, { type: 'bytes', mailbox: 'INBOX', streaming: i * 0.5e6 });
  }
  assert.match(screen.text()[0] ?? '', /^INBOX 0\/1 · all 0\/1 msgs, 20\.0\/100\.0 MB, 2\.0 MB\/s, ETA 40 s$/);
  // The server goes quiet: no event for 20 s.
  const shown: string[] = [];
  for (let i = 0; i < 20; i++) {
    tick(1000);
    t.mock.timers.tick(1000);
    shown.push(screen.text()[0] ?? '');
  }
  assert.match(shown[4] ?? '', /, 1\.\d MB\/s, ETA \d+ s$/, 'the rate falls, the ETA grows');
  assert.match(shown.at(-1) ?? '', /^INBOX 0\/1 · all 0\/1 msgs, 20\.0\/100\.0 MB, 0\.0 MB\/s$/, 'no ETA once nothing moved for a whole window');
  r.finished = 1;
  const before = writes();
  for (let i = 0; i < 30; i++) {
    tick(1000);
    t.mock.timers.tick(1000);
  }
  assert.equal(writes(), before, 'a finished run is not redrawn (--watch keeps its first pass\'s line)');
  p.above('watch: IDLE on INBOX');
  p.done();
  tick(1000);
  t.mock.timers.tick(1000);
  assert.deepEqual(screen.text(), ['watch: IDLE on INBOX', ''], 'nothing redrawn after done()');
});

test('a second run on the same line (backup --verify: the copy, then the check) starts afresh', () => {
  const { screen, p, tick } = onScreen();
  const copy = new RunReport();
  planned(p, copy, 'INBOX', 2, 20e6, [1, 1]);
  tick(2000);
  copy.messages = 2;
  copy.bytes = 20e6;
  p.update(copy, { type: 'batch', mailbox: 'INBOX', messages: 2, bytes: 20e6, streaming: 0 });
  assert.match(screen.text()[0] ?? '', /^INBOX 2\/2 · all 2\/2 msgs, 20\.0\/20\.0 MB, 10\.0 MB\/s$/);
  // verify's own report, its events without planning ones.
  const check = new RunReport();
  check.planned = 2;
  check.plannedBytes = 20e6;
  tick(250);
  p.update(check, { type: 'planned', mailbox: 'INBOX', messages: 2, bytes: 20e6 });
  tick(1000);
  check.messages = 1;
  check.bytes = 5e6;
  p.update(check, { type: 'batch', mailbox: 'INBOX', messages: 1, bytes: 5e6 });
  assert.match(screen.text()[0] ?? '', /^INBOX 1\/2 · all 1\/2 msgs, 5\.0\/20\.0 MB, 5\.0 MB\/s, ETA 3 s$/);
});
