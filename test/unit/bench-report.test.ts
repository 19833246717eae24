import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bestCase, floorLines, targetLines, type RunResult, type ScenarioResult } from '../../scripts/bench/report.js';

function scenario(id: string, wallS: number, more: Partial<ScenarioResult> = {}): ScenarioResult {
  return {
    id, label: id, tool: 't', account: 'src', messages: 100, bytes: 1_000_000, copied: 100, wallS,
    messagesPerS: 100 / wallS, mbPerS: 1 / wallS, cpuS: null, userS: null, sysS: null, peakRssMB: null,
    serverCpuS: null, baseline: null, ratio: null, load1Before: 0, load1After: 0, ...more,
  };
}

function run(scenarios: ScenarioResult[], cores = 2): RunResult {
  return {
    preset: 'full',
    machine: { date: 'd', cpuModel: 'c', cores, ramGB: 1, os: 'o', kernel: 'k', node: 'n', dovecot: null, mbsync: null, loadAverageAtStart: [0, 0, 0] },
    mailbox: { user: 'src', seed: 1, folders: 1, messages: 100, bytes: 1_000_000, largestFolder: 100, seedSeconds: 1 },
    otherMailboxes: [], scenarios, startup: { command: 'x', runsMs: [1], medianMs: 1 }, memory: [], profile: null,
    measuredWith: 'time', rounds: 1, tls: 'TLS', notes: [], loadAverageAtEnd: [0, 0, 0], totalSeconds: 1,
  };
}

test('the best case is the floor wall or the CPU that must fit on the cores, whichever is longer', () => {
  const mbsync = scenario('mbsync-maildir', 20, { serverCpuS: 6 });
  const mf = scenario('mailferry-maildir', 25, { serverCpuS: 7, baseline: 'mbsync-maildir', ratio: 0.8, ratioTarget: 2 });
  // CPU bound: (12 + 6) / 2 = 9 s, longer than the floor's 8 s wall: 20 / 9 = 2.22x, so 2x is reachable.
  const floorCpu = scenario('disk-floor', 8, { cpuS: 12 });
  const r = run([mf, mbsync, floorCpu]);
  const line = bestCase(r, floorCpu, ['mailferry-maildir', 'mbsync-maildir']);
  assert.match(line ?? '', /best case for any client here: 9\.00 s/);
  assert.match(line ?? '', /at best 2\.22x \(target 2x: reachable in principle\)/);
  // A slower floor wins over the CPU bound: 20 / 11 = 1.82x, out of reach.
  const floorWall = scenario('disk-floor', 11, { cpuS: 12 });
  const slow = bestCase(run([mf, mbsync, floorWall]), floorWall, ['mailferry-maildir', 'mbsync-maildir']);
  assert.match(slow ?? '', /11\.00 s \(the floor's wall/);
  assert.match(slow ?? '', /at best 1\.82x \(target 2x: out of reach on this machine\)/);
  // More cores lower the CPU bound.
  assert.match(bestCase(run([mf, mbsync, floorCpu], 4), floorCpu, ['mailferry-maildir']) ?? '', /: 8\.00 s/);
});

test('no best case without the floor CPU or any server CPU; floorLines carries it under the floor', () => {
  const floor = scenario('disk-floor', 8);
  assert.equal(bestCase(run([floor, scenario('mbsync-maildir', 20)]), floor, ['mbsync-maildir']), undefined);
  const r = run([scenario('disk-floor', 8, { cpuS: 4 }), scenario('mbsync-maildir', 20, { serverCpuS: 2 })]);
  const lines = floorLines(r);
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? '', /^disk-floor: 100 files in 8\.00 s/);
  assert.match(lines[1] ?? '', /^best case for any client here: 8\.00 s/);
});

test('a target ratio is reported met or not', () => {
  const r = run([
    scenario('mbsync-maildir', 20),
    scenario('mailferry-maildir', 25, { baseline: 'mbsync-maildir', ratio: 0.8, ratioTarget: 2 }),
    scenario('retr-loop', 1),
    scenario('mailferry-pop3-maildir', 1.5, { baseline: 'retr-loop', ratio: 0.67, ratioTarget: 0.6 }),
  ]);
  assert.deepEqual(targetLines(r), [
    "mailferry-maildir at 80% (NOT met) of mbsync-maildir's throughput (target: at least 200%)",
    "mailferry-pop3-maildir at 67% of retr-loop's throughput (target: at least 60%)",
  ]);
});
