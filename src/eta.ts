/**
 * The rate and ETA of the progress display (progress.ts): bytes a second over a moving window of
 * the last `windowMs`, not the run's average since it started (which counts the login, listing
 * and planning as time spent copying: issue 19 saw "ETA 6 min" for a 6 s run), and an ETA only
 * for a known total.
 *
 * - `sample(t, done)` records the bytes done at time `t` (ms). Samples closer than 100 ms are
 *   merged, so a window holds at most a few hundred.
 * - The window starts at the last sample before progress: samples at its start that show no
 *   progress since the first are dropped, so the wait before the first byte (or during a stall
 *   that has left the window) is not averaged in; one sample at or before the window's start is
 *   kept, so the rate spans the whole window once the run is that long.
 * - `rate()`: bytes a second over the window; 0 when nothing moved in it (a stall) or less is
 *   done than at its start, undefined before the first sample.
 * - `seconds(total)`: what is left of `total` at that rate; undefined when `total` is not known
 *   yet, nothing is left, nothing moved in the window, or the window spans under `minSpanMs`.
 *   A burst (a batch of small messages fetched at once) moves it by at most what the burst adds
 *   to the window's bytes, never by an order of magnitude over a steady rate.
 */
export class Eta {
  private readonly samples: { t: number; done: number }[] = [];

  constructor(
    private readonly windowMs = 15_000,
    private readonly minSpanMs = 1_000,
  ) {}

  sample(t: number, done: number): void {
    // The last sample moves forward while it is within 100 ms of the one before it.
    const last = this.samples.at(-1);
    const before = this.samples.at(-2);
    if (last !== undefined && before !== undefined && last.t - before.t < 100) {
      last.t = t;
      last.done = done;
    } else this.samples.push({ t, done });
    const s = this.samples;
    while (s.length > 2 && (s[1] as { t: number }).t <= t - this.windowMs) s.shift();
    while (s.length > 1 && (s[1] as { done: number }).done === (s[0] as { done: number }).done) s.shift();
  }

  /** Bytes a second over the window. */
  rate(): number | undefined {
    const span = this.span();
    if (span === undefined) return undefined;
    // Below 0 when a failed attempt's bytes left the count (pipeline/flow.ts): shown as 0.
    return span.ms === 0 ? 0 : Math.max(0, (span.bytes * 1000) / span.ms);
  }

  /** Seconds until `total` bytes are done, at the window's rate. */
  seconds(total: number | undefined): number | undefined {
    const span = this.span();
    const done = this.samples.at(-1)?.done;
    if (total === undefined || span === undefined || done === undefined || span.ms < this.minSpanMs || span.bytes <= 0) return undefined;
    const left = total - done;
    return left > 0 ? (left * span.ms) / span.bytes / 1000 : undefined;
  }

  private span(): { ms: number; bytes: number } | undefined {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (first === undefined || last === undefined || first === last) return first === undefined ? undefined : { ms: 0, bytes: 0 };
    return { ms: last.t - first.t, bytes: last.done - first.done };
  }
}
