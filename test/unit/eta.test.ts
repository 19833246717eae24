import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Eta } from '../../src/eta.js';

/**
 * The ETA estimator (src/eta.ts) on simulated runs: a sample every 250 ms, as the progress line
 * gets `bytes` events, and the true time left known from the simulation.
 */
const MB = 1e6;

test('an even mailbox: no ETA before 1 s of progress, then steady and right, never jumping by an order of magnitude', () => {
  const eta = new Eta();
  const total = 60 * MB;
  // 3 s of login, listing and planning with nothing copied: not averaged in (the old line's
  // run-average said "6 min" for a 6 s run).
  for (let t = 0; t <= 3000; t += 250) eta.sample(t, 0);
  assert.equal(eta.seconds(total), undefined);
  const shown: number[] = [];
  for (let t = 3250, done = 0; done < total; t += 250) {
    done += 2.5 * MB; // 10 MB/s
    eta.sample(t, done);
    const s = eta.seconds(total);
    const truth = (total - done) / (10 * MB);
    if (t < 3000 + 1000) {
      assert.equal(s, undefined, `at ${t} ms, under 1 s of progress`);
      continue;
    }
    if (truth === 0) continue;
    assert.ok(s !== undefined && Math.abs(s - truth) < 0.01, `at ${t} ms: ETA ${s} s, truly ${truth} s`);
    shown.push(s);
  }
  assert.ok(shown.length > 10);
  for (let i = 1; i < shown.length; i++) assert.ok((shown[i] as number) <= (shown[i - 1] as number), 'counts down');
  assert.equal(eta.rate(), 10 * MB);
});

test('uneven folder sizes: the total grows as folders are planned; once all are, the ETA holds within 10 %', () => {
  const eta = new Eta();
  // Folders of 1, 200, 3 and 90 MB, planned one after the other while the first ones copy.
  const sizes = [1, 200, 3, 90].map((n) => n * MB);
  let planned = 0;
  let done = 0;
  const rate = 4 * MB;
  const all = sizes.reduce((a, b) => a + b, 0);
  for (let t = 0, i = 0; done < all; t += 250) {
    if (i < sizes.length && t % 2000 === 0) planned += sizes[i++] as number;
    done = Math.min(planned, done + rate / 4);
    eta.sample(t, done);
    // The display asks for an ETA only once every folder is planned (progress.ts): before, the
    // total it would divide is a part, and the ETA would jump as each folder is planned.
    const known = i === sizes.length;
    const s = eta.seconds(known ? planned : undefined);
    if (!known) assert.equal(s, undefined);
    else if (t > 9000 && done < all) {
      const truth = (all - done) / rate;
      assert.ok(s !== undefined && s > truth * 0.9 && s < truth * 1.1, `at ${t} ms: ETA ${s} s, truly ${truth} s`);
    }
  }
});

test('a stall: the rate falls to 0 and the ETA goes away (no false hope); after it, both come back within the window', () => {
  const eta = new Eta(15_000);
  const total = 300 * MB;
  let t = 0;
  let done = 0;
  for (; t <= 20_000; t += 250) eta.sample(t, (done += 0.5 * MB)); // 2 MB/s
  const before = eta.seconds(total) as number;
  assert.ok(Math.abs(before - (total - done) / (2 * MB)) < 1, `${before}`);
  const stalledAt = t;
  const during: (number | undefined)[] = [];
  for (; t <= stalledAt + 20_000; t += 250) {
    eta.sample(t, done);
    during.push(eta.seconds(total));
  }
  // While the window still holds progress the ETA grows; once it holds none there is no ETA.
  const known = during.filter((s): s is number => s !== undefined);
  for (let i = 1; i < known.length; i++) assert.ok((known[i] as number) >= (known[i - 1] as number), 'the ETA only grows during a stall');
  assert.ok((known.at(-1) ?? 0) > before * 2, `grew from ${before} to ${known.at(-1)}`);
  assert.equal(during.at(-1), undefined, 'no ETA once nothing moved for a whole window');
  assert.equal(eta.rate(), 0);
  // Copying again at 2 MB/s: the stall is not averaged in, the ETA is right after 1 s.
  for (const end = t + 2000; t <= end; t += 250) eta.sample(t, (done += 0.5 * MB));
  const after = eta.seconds(total) as number;
  assert.ok(Math.abs(after - (total - done) / (2 * MB)) < 1, `after the stall: ${after}`);
});

test('a burst (a batch of small messages arriving at once) moves the ETA by less than an order of magnitude', () => {
  const eta = new Eta();
  const total = 400 * MB;
  let t = 0;
  let done = 0;
  const shown: number[] = [];
  const step = (add: number): void => {
    t += 250;
    done += add;
    eta.sample(t, done);
    const s = eta.seconds(total);
    if (s !== undefined) shown.push(s);
  };
  for (let i = 0; i < 80; i++) step(0.25 * MB); // 1 MB/s for 20 s
  step(20 * MB); // 20 MB in 250 ms
  for (let i = 0; i < 80; i++) step(0.25 * MB);
  for (let i = 1; i < shown.length; i++) {
    const ratio = (shown[i - 1] as number) / (shown[i] as number);
    assert.ok(ratio < 10 && ratio > 0.1, `the ETA went from ${shown[i - 1]} s to ${shown[i]} s`);
  }
  // Once the burst has left the window, the ETA is right again.
  assert.ok(Math.abs((shown.at(-1) as number) - (total - done) / MB) < 1, `${shown.at(-1)}`);
});

test('samples closer than 100 ms are merged: the window stays small however often it is fed', () => {
  const eta = new Eta(15_000);
  for (let t = 0; t < 15_000; t += 5) eta.sample(t, t * 1000);
  const held = (eta as unknown as { samples: unknown[] }).samples.length;
  assert.ok(held <= 152, `${held} samples held`);
  assert.equal(eta.rate(), 1e6);
});
