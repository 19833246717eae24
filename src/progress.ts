import { Eta } from './eta.js';
import type { ProgressEvent } from './pipeline/run.js';
import type { RunReport } from './report.js';

/**
 * The progress display on a terminal (stderr), redrawn at most 5 times a second. While the source's
 * folders are listed it says so; while they are planned it says how many are, with what is planned
 * and copied so far (the totals marked `+`, still growing) and no ETA; then the folder being
 * copied with its own messages done of those planned, and the whole run's messages, MB, rate and
 * ETA. The MB include the bytes of messages still arriving (ProgressEvent `streaming`), so the line
 * moves while one large message streams; the rate and ETA are over a moving window (eta.ts).
 * Only ever on a TTY; cron and --json runs never see it.
 *
 *   listing folders…
 *   INBOX 0/1 · planning 1/4 folders · 0/3+ msgs, 23.5/52.4+ MB, 10.0 MB/s
 *   Archive/2019 312/1200 · all 5210/20000 msgs, 301.2/1018.5 MB, 38.4 MB/s, ETA 19 s
 */
export interface Progress {
  update(report: RunReport, event: ProgressEvent): void;
  /** Print a whole line (a warning) above the progress line, which is redrawn under it. */
  above(line: string): void;
  done(): void;
}

interface FolderCount {
  planned: number;
  done: number;
}

/** What the line shows besides the report's figures. */
export interface LineState {
  /** The folder the last event was about, and its own messages done of those planned. */
  folder?: string;
  count?: FolderCount;
  /** Bytes received, not yet committed (in no figure of the report). */
  streaming?: number;
  /** Bytes a second over the moving window. */
  rate?: number;
  /** Seconds left; absent until every folder is planned. */
  eta?: number;
  /** The source's folders are being listed: nothing else is known yet. */
  listing?: boolean;
  /** Folders planned of those to plan, while planning goes on. */
  planning?: { planned: number; folders: number };
}

export function progressLine(report: RunReport, s: LineState, width: number): string {
  const fit = (text: string): string => keepStart(text, Math.max(20, width - 1));
  if (s.listing === true) return fit('listing folders…');
  const done = report.bytes + (s.streaming ?? 0);
  const mb = (n: number): string => (n / 1e6).toFixed(1);
  const p = s.planning;
  if (p !== undefined && report.planned === 0 && done === 0) return fit(`planning ${p.planned}/${p.folders} folders`);
  const more = p === undefined ? '' : '+';
  const eta = s.eta === undefined ? '' : `, ETA ${formatSeconds(s.eta)}`;
  const totals = `${report.messages}/${report.planned}${more} msgs, ${mb(done)}/${mb(report.plannedBytes)}${more} MB, ${((s.rate ?? 0) / 1e6).toFixed(1)} MB/s${eta}`;
  const all = p === undefined ? `all ${totals}` : `planning ${p.planned}/${p.folders} folders · ${totals}`;
  if (s.folder === undefined) return fit(all);
  const mine = s.count === undefined ? '' : ` ${s.count.done}/${s.count.planned}`;
  // The folder name gives way first when the terminal is narrow. Widths are terminal columns (a
  // CJK character takes two), and the line stays under the width: a line that wraps cannot be
  // redrawn in place, and leaves stale copies above the summary. With no room for even a short
  // name (a large account still planning, at 80 columns), the folder gives way entirely.
  const room = width - displayWidth(all) - mine.length - 4;
  if (room < 8) return fit(all);
  const name = keepEnd(printable(s.folder), room);
  return fit(`${name}${mine} · ${all}`);
}

/** A folder name from the server as terminal text: control characters (ESC, CR, ...) shown as '?'. */
function printable(s: string): string {
  return s.replace(/\p{Cc}/gu, '?');
}

/** Columns a code point takes in a terminal: 0 for combining marks, 2 for East Asian wide ones. */
function columns(cp: number, ch: string): number {
  if (/\p{Mn}|\p{Me}|\u200B|\u200D/u.test(ch)) return 0;
  const wide =
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd);
  return wide ? 2 : 1;
}

export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += columns(ch.codePointAt(0) ?? 0, ch);
  return w;
}

/** The start of `s` that fits in `width` columns. */
function keepStart(s: string, width: number): string {
  let w = 0;
  let out = '';
  for (const ch of s) {
    w += columns(ch.codePointAt(0) ?? 0, ch);
    if (w > width) break;
    out += ch;
  }
  return out;
}

/** `s`, or '…' and its end, in at most `width` columns. */
function keepEnd(s: string, width: number): string {
  if (displayWidth(s) <= width) return s;
  const chars = [...s];
  let w = 1;
  let i = chars.length;
  while (i > 0) {
    const ch = chars[i - 1] as string;
    const c = columns(ch.codePointAt(0) ?? 0, ch);
    if (w + c > width) break;
    w += c;
    i--;
  }
  return `…${chars.slice(i).join('')}`;
}

function formatSeconds(s: number): string {
  if (s < 90) return `${Math.ceil(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** The progress line on the terminal now, if any: stderr's log lines go above it (stderrLine). */
let active: Progress | undefined;

/** Write one diagnostic line to stderr; while a progress line is shown, on a fresh line above it. */
export function stderrLine(line: string): void {
  if (active === undefined) process.stderr.write(`${line}\n`);
  else active.above(line);
}

/** Take the progress line off the terminal (before a fatal error is printed). */
export function clearProgress(): void {
  active?.done();
}

/**
 * The line on `stream`. Besides each event, it is redrawn once a second when no event came (a
 * stalled server sends none): the rate falls and the ETA goes away, instead of a stale one staying.
 * A finished run (RunReport.finished) is not redrawn.
 */
export function ttyProgress(stream: NodeJS.WriteStream, now: () => number = Date.now): Progress {
  let last = 0;
  let shown = '';
  const folders = new Map<string, FolderCount>();
  let eta = new Eta();
  let listing = false;
  /** From `planning` events; a caller that sends none (verify) has its totals known from the start. */
  let planning: { planned: number; folders: number } | undefined;
  let streaming = 0;
  let folder: string | undefined;
  let report: RunReport | undefined;
  const countOf = (mailbox: string): FolderCount => {
    const f = folders.get(mailbox) ?? { planned: 0, done: 0 };
    folders.set(mailbox, f);
    return f;
  };
  /** Samples the bytes done now, and redraws if the last draw is `every` ms old. */
  const draw = (r: RunReport, every: number): void => {
    const t = now();
    eta.sample(t, r.bytes + streaming);
    if (t - last < every) return;
    last = t;
    const seconds = listing || planning !== undefined ? undefined : eta.seconds(r.plannedBytes);
    const rate = eta.rate();
    const state: LineState = {
      streaming,
      listing,
      ...(folder === undefined ? {} : { folder, count: countOf(folder) }),
      ...(rate === undefined ? {} : { rate }),
      ...(seconds === undefined ? {} : { eta: seconds }),
      ...(planning === undefined ? {} : { planning }),
    };
    shown = progressLine(r, state, stream.columns ?? 100);
    stream.write(`\r\x1b[K${shown}`);
  };
  // Not once the run has finished: --watch keeps its first pass's line, under its own lines, for good.
  const quiet = setInterval(() => {
    if (report !== undefined && report.finished === undefined) draw(report, 1000);
  }, 1000);
  quiet.unref();
  const progress: Progress = {
    above(line) {
      stream.write(shown === '' ? `${line}\n` : `\r\x1b[K${line}\n${shown}`);
    },
    update(r, e) {
      if (r !== report && report !== undefined) {
        // Another run on the same line (`backup --verify`: the copy, then the check): afresh.
        folders.clear();
        eta = new Eta();
        planning = undefined;
        streaming = 0;
      }
      report = r;
      if (e.type === 'listing') listing = true;
      else if (e.type === 'planning') {
        listing = false;
        planning = e.plannedFolders < e.folders ? { planned: e.plannedFolders, folders: e.folders } : undefined;
      } else {
        listing = false;
        folder = e.mailbox;
        if (e.type === 'planned') countOf(e.mailbox).planned = e.messages;
        else if (e.type === 'bytes') streaming = e.streaming;
        else {
          countOf(e.mailbox).done += e.messages;
          streaming = e.streaming ?? 0;
        }
      }
      draw(r, 200);
    },
    done() {
      clearInterval(quiet);
      report = undefined;
      if (shown !== '') stream.write('\r\x1b[K');
      shown = '';
      if (active === progress) active = undefined;
    },
  };
  active = progress;
  return progress;
}
