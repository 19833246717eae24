import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';

/**
 * Samples a child's peak RSS (VmHWM in /proc/PID/status, Linux) every 50 ms from spawn until
 * `stop()`: pass `watch` as runCli's onSpawn. The peak is in MiB.
 */
export function peakRss(): { watch: (child: ChildProcess) => void; stop: () => number } {
  let peakKb = 0;
  let timer: NodeJS.Timeout | undefined;
  return {
    watch: (child) => {
      timer = setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid ?? 0}/status`, 'utf8'));
          if (m !== null) peakKb = Math.max(peakKb, Number(m[1]));
        } catch {
          // exited meanwhile
        }
      }, 50);
    },
    stop: () => {
      clearInterval(timer);
      return peakKb / 1024;
    },
  };
}
