import type { WatchConfig } from '../config/watch.js';
import { WATCH_BACKOFF } from '../domain/retry.js';
import { watchLoop } from '../pipeline/watch.js';
import { clearProgress } from '../progress.js';
import type { RunReport } from '../report.js';
import { committedSink } from '../sinks/committed.js';
import type { Sink } from '../sinks/sink.js';
import type { Source, WatchedChanges } from '../sources/source.js';
import type { CommandDeps } from './deps.js';

/**
 * backup and forward, once or with `--watch`: `once` is the command's run (the one pipeline, and
 * what the command does after it, such as POP3 --delete) on a Source and the command's Sinks.
 * Without `--watch` it runs once on one Source. With it, the Sinks (and their locks) stay open for
 * the whole watch and every pass (pipeline/watch.ts) gets a fresh Source, so each pass is a normal
 * run from a clean start; an IMAP source's FolderWatch (IDLE) lives beside them, and
 * its sessions are counted apart from `--connections` (config/watch.ts). `also` names what a
 * command carries besides new mail (migrate: flag changes, and expunges with --sync-deletions), so
 * that such a change seen in IDLE brings a pass of its folder forward instead of waiting for the
 * next full pass. `--json` adds one line per
 * message made durable (`{"type":"message",...}`, per sink), per pass and per heartbeat.
 */
export async function onceOrWatch(
  watch: WatchConfig | undefined,
  makeSource: () => Source | Promise<Source>,
  sinks: readonly Sink[],
  once: (source: Source, sinks: readonly Sink[], only: readonly string[] | undefined, deps: CommandDeps) => Promise<RunReport>,
  deps: CommandDeps,
  also: WatchedChanges = {},
): Promise<RunReport> {
  if (watch === undefined) {
    const source = await makeSource();
    try {
      return await once(source, sinks, undefined, deps);
    } finally {
      await source.close();
    }
  }
  const emit = deps.onEvent;
  const watched = sinks.map((s) =>
    committedSink(s, (sink, meta) => {
      deps.log.info(`watch: ${meta.mailbox.path} ${meta.id} copied to ${sink}`);
      emit?.({ type: 'message', mailbox: meta.mailbox.path, id: meta.id, bytes: meta.size ?? 0, sink, time: new Date().toISOString() });
    }),
  );
  // The first source only lends its FolderWatch (its own connections, which outlive it).
  const probe = await makeSource();
  const folders = probe.watch?.(watch.folders, { renewMs: IDLE_RENEW_MS, backoff: WATCH_BACKOFF, also });
  await probe.close();
  if (folders !== undefined) deps.log.info(`watch: IDLE on ${watch.folders.join(', ')}; a full pass every ${watch.intervalMs / 1000} s`);
  else deps.log.info(`watch: polling every ${watch.intervalMs / 1000} s`);
  let passes = 0;
  try {
    return await watchLoop(
      async (only) => {
        const source = await makeSource();
        // The first pass is the normal run, with its progress display; later ones say what they
        // copied. Its progress line is taken off the terminal when it ends, so it does not stay
        // under the watch's own lines as if the first run were still going.
        const first = passes++ === 0;
        const passDeps: CommandDeps = first ? deps : { log: deps.log, signal: deps.signal, ...(deps.debug === undefined ? {} : { debug: deps.debug }) };
        try {
          return await once(source, watched, only, passDeps);
        } finally {
          if (first) clearProgress();
          await source.close();
        }
      },
      {
        intervalMs: watch.intervalMs,
        heartbeatMs: watch.heartbeatMs,
        backoff: WATCH_BACKOFF,
        signal: deps.signal,
        log: deps.log,
        ...(emit === undefined ? {} : { onEvent: (e) => emit(e) }),
      },
      folders,
      folders === undefined ? 0 : watch.folders.length,
    );
  } finally {
    await folders?.close();
  }
}

/** IDLE is ended and sent again this often: under RFC 2177's 29 minutes, with room for a slow NOOP. */
export const IDLE_RENEW_MS = 25 * 60_000;
