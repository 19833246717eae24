import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * The peak resident set (VmHWM, kB) of a child process, sampled every 50 ms from /proc: pass
 * `onSpawn` to runCli, read `peakKb` once it ended, `stop()` in a finally.
 */
export function peakRss(): { onSpawn: (child: ChildProcess) => void; readonly peakKb: number; stop(): void } {
  let peakKb = 0;
  let sampler: NodeJS.Timeout | undefined;
  return {
    onSpawn: (child) => {
      sampler = setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid ?? 0}/status`, 'utf8'));
          if (m !== null) peakKb = Math.max(peakKb, Number(m[1]));
        } catch {
          // exited meanwhile
        }
      }, 50);
    },
    get peakKb() {
      return peakKb;
    },
    stop: () => clearInterval(sampler),
  };
}
