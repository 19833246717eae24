import type { ProgressEvent } from './pipeline/run.js';
import type { RunReport } from './report.js';

/**
 * The progress display on a terminal (stderr), redrawn at most 5 times a second: the folder being
 * copied with its own messages done of those planned, then the whole run's messages, MB, rate and
 * ETA. Only ever on a TTY; cron and --json runs never see it.
 *
 *   Archive/2019 312/1200 · all 5210/20000 msgs, 301.2/1018.5 MB, 38.4 MB/s, ETA 19 s
 */
export interface Progress {
  update(report: RunReport, event: ProgressEvent): void;
  done(): void;
}

interface FolderCount {
  planned: number;
  done: number;
}

export function progressLine(report: RunReport, folder: string, count: FolderCount | undefined, width: number): string {
  const secs = report.seconds || 0.001;
  const rate = report.bytes / 1e6 / secs;
  const left = report.plannedBytes - report.bytes;
  const eta = rate > 0 && left > 0 ? `, ETA ${formatSeconds(left / 1e6 / rate)}` : '';
  const mb = (n: number): string => (n / 1e6).toFixed(1);
  const all = `all ${report.messages}/${report.planned} msgs, ${mb(report.bytes)}/${mb(report.plannedBytes)} MB, ${rate.toFixed(1)} MB/s${eta}`;
  const mine = count === undefined ? '' : ` ${count.done}/${count.planned}`;
  // The folder name gives way first when the terminal is narrow.
  const room = Math.max(8, width - all.length - mine.length - 4);
  const name = folder.length > room ? `…${folder.slice(folder.length - room + 1)}` : folder;
  return `${name}${mine} · ${all}`.slice(0, Math.max(20, width - 1));
}

function formatSeconds(s: number): string {
  if (s < 90) return `${Math.ceil(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function ttyProgress(stream: NodeJS.WriteStream, now: () => number = Date.now): Progress {
  let last = 0;
  let shown = false;
  const folders = new Map<string, FolderCount>();
  return {
    update(r, e) {
      const f = folders.get(e.mailbox) ?? { planned: 0, done: 0 };
      if (e.type === 'planned') f.planned = e.messages;
      else f.done += e.messages;
      folders.set(e.mailbox, f);
      const t = now();
      if (t - last < 200) return;
      last = t;
      stream.write(`\r\x1b[K${progressLine(r, e.mailbox, f, stream.columns ?? 100)}`);
      shown = true;
    },
    done() {
      if (shown) stream.write('\r\x1b[K');
    },
  };
}
