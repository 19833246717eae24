import type { ProgressEvent } from './pipeline/run.js';
import type { RunReport } from './report.js';

/** A one-line progress display on a TTY (stderr), redrawn at most 5 times a second. */
export function ttyProgress(stream: NodeJS.WriteStream): { update: (r: RunReport, e: ProgressEvent) => void; done: () => void } {
  let last = 0;
  let shown = false;
  return {
    update(r, e) {
      const now = Date.now();
      if (now - last < 200) return;
      last = now;
      const secs = r.seconds || 0.001;
      const rate = r.bytes / 1e6 / secs;
      const left = r.plannedBytes - r.bytes;
      const eta = rate > 0 && left > 0 ? ` ETA ${Math.ceil(left / 1e6 / rate)} s` : '';
      const line = `${e.mailbox.slice(0, 30)}: ${r.messages}/${r.planned} msgs, ${(r.bytes / 1e6).toFixed(1)}/${(r.plannedBytes / 1e6).toFixed(1)} MB, ${rate.toFixed(1)} MB/s${eta}`;
      stream.write(`\r\x1b[K${line}`);
      shown = true;
    },
    done() {
      if (shown) stream.write('\r\x1b[K');
    },
  };
}
