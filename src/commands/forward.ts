import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { rawFlags } from '../config/flags.js';
import { loadForwardConfig, type ForwardConfig } from '../config/forward.js';
import type { Credential, Credentials } from '../auth/credentials.js';
import { credentialsFor } from '../auth/login.js';
import { MailferryError } from '../domain/errors.js';
import { describeEndpoint } from '../endpoints/url.js';
import { SmtpSink } from '../drivers/smtp/sink.js';
import { rateLimited } from '../drivers/smtp/rate.js';
import { renewingSender } from '../drivers/smtp/renew.js';
import { smtpSender, type SmtpSender } from '../drivers/smtp/transport.js';
import type { Source } from '../sources/source.js';
import { accountOf } from '../state/checkpoint.js';
import { openArchives } from './archive.js';
import type { Command, CommandDeps } from './deps.js';
import { DryRunSink } from './dry-run.js';
import { stateDir } from '../state/dir.js';
import { openState } from './target.js';
import { printResult } from './output.js';
import { transfer, type TransferResult } from './transfer.js';
import { accountSource, archiveSource } from './sources.js';
import { onceOrWatch } from './watch.js';

/**
 * `mailferry forward`: new mail from an account (POP3, IMAP) or a local archive, sent through an
 * SMTP relay to one address (the fetchmail job), optionally archived in the same pass (`--archive`,
 * more sinks for the one pipeline). What was forwarded is kept on this machine, like migrate's
 * target state: `$XDG_STATE_HOME/mailferry/forward-<16 hex>.json` (else ~/.local/state/mailferry/),
 * the hex from the source account, the relay (user and host) and the recipient, so each such
 * triple has its own record; 0600 in a 0700 directory, no secret; `FILE.lock` beside it (exit 7).
 * `--dry-run` plans from that state alone (the dry-run wrappers of migrate): no lock, no relay.
 * `--watch` keeps the relay, the state and its lock for the whole watch and forwards new mail as
 * it comes (commands/watch.ts): IDLE for an IMAP source, a poll every --watch-interval otherwise.
 * From Gmail (X-GM-EXT-1) without `--include`, the source is read in Gmail mode: each message is
 * sent once, from All Mail (or Spam, Trash), whatever labels it has; `--include` picks folders
 * as folders (a message in two of them is sent twice).
 */
export function forwardStatePath(sourceIdentity: string, relayIdentity: string, rcpt: string, env: NodeJS.ProcessEnv = process.env): string {
  const hash = createHash('sha256')
    .update(`${accountOf(sourceIdentity)}\n${accountOf(relayIdentity)}\n${rcpt.toLowerCase()}`)
    .digest('hex')
    .slice(0, 16);
  return join(stateDir(env), `forward-${hash}.json`);
}

export async function forward(cfg: ForwardConfig, deps: CommandDeps): Promise<TransferResult> {
  // Both credentials first: a bad password source is a usage error before any connection, a
  // refused OAuth2 refresh token an auth error.
  const credentials = 'path' in cfg.source ? undefined : credentialsFor(cfg.source.auth, cfg.source.endpoint);
  await credentials?.get();
  // --mark-sent never talks to the relay: no relay credential is read.
  const relayCredentials = cfg.smtp.auth === undefined || cfg.markSent ? undefined : credentialsFor(cfg.smtp.auth, cfg.smtp.endpoint);
  const relayCredential = await relayCredentials?.get();
  const makeSource = (): Promise<Source> => openSource(cfg, credentials, deps);
  const source = await makeSource();
  const relayIdentity = describeEndpoint(cfg.smtp.endpoint);
  const name = `${relayIdentity} -> ${cfg.rcpt}`;
  const statePath = cfg.statePath ?? forwardStatePath(source.identity, relayIdentity, cfg.rcpt);
  let state: Awaited<ReturnType<typeof openState>> | undefined;
  let archives: Awaited<ReturnType<typeof openArchives>> | undefined;
  let sink: SmtpSink | undefined;
  try {
    state = await openState(statePath, source.identity, cfg.dryRun);
    archives = await openArchives(cfg.archives, source.identity, cfg.layout, deps.log, cfg.dryRun);
    if (cfg.dryRun) {
      // What is already forwarded comes from the state alone; no lock, no relay, no archive touched.
      return await transfer(source, [new DryRunSink(name, state.checkpoint), ...archives.sinks], cfg, deps, statePath);
    }
    const relay = (credential?: Credential): SmtpSender =>
      smtpSender({
        endpoint: cfg.smtp.endpoint,
        ...(credential === undefined ? {} : { credential }),
        ...(cfg.smtp.ca === undefined ? {} : { ca: cfg.smtp.ca }),
        insecure: cfg.smtp.insecure,
        log: deps.log,
        debug: deps.debug ?? false,
      });
    // An OAuth2 token that expires mid-run is replaced when the relay refuses it (renew.ts).
    const sender = cfg.markSent
      ? markingSender()
      : relayCredentials === undefined || relayCredential === undefined
        ? relay()
        : renewingSender(relayCredentials, relayCredential, relay);
    sink = new SmtpSink({
      sender: cfg.rate === undefined || cfg.markSent ? sender : rateLimited(sender, cfg.rate, deps.signal),
      envelope: { from: cfg.envelopeFrom, to: cfg.rcpt },
      checkpoint: state.checkpoint,
      name,
      retries: cfg.retries,
      retryBaseMs: cfg.retryBaseMs,
      signal: deps.signal,
      log: deps.log,
    });
    const smtp = sink;
    // The sink counts every message it forwarded; each pass reports its own.
    const report = await onceOrWatch(
      cfg.watch,
      makeSource,
      [smtp, ...archives.sinks],
      async (from, sinks, only, passDeps) => {
        const before = smtp.forwarded;
        const { report: r } = await transfer(from, sinks, { ...cfg, ...(only === undefined ? {} : { only }) }, passDeps, statePath);
        if (cfg.markSent) r.markedSent = smtp.forwarded - before;
        else r.forwarded = smtp.forwarded - before;
        return r;
      },
      deps,
    );
    return { report, statePath };
  } finally {
    await source.close();
    await sink?.close();
    await archives?.close();
    await state?.lock?.release();
  }
}

/**
 * `--mark-sent`: a relay that accepts every message without sending it anywhere. The SMTP sink
 * records each one as it records a real 250 (with this text as the reply), so later runs skip them.
 */
function markingSender(): SmtpSender {
  return {
    send: () => Promise.resolve({ accepted: true, text: 'not sent: recorded by --mark-sent' }),
    close: () => undefined,
  };
}

/** The source: an IMAP or POP3 account, or a local archive read back (as restore reads it). */
async function openSource(cfg: ForwardConfig, credentials: Credentials | undefined, deps: CommandDeps): Promise<Source> {
  const s = cfg.source;
  const o = { streamThreshold: cfg.streamThreshold, maxMessageSize: cfg.maxMessageSize, signal: deps.signal, log: deps.log, debug: deps.debug ?? false };
  if ('path' in s) return archiveSource(s, cfg.layout, o);
  if (credentials === undefined) throw new MailferryError('internal', 'a mail account without credentials');
  // Gmail mode (a server with X-GM-EXT-1) unless folders are chosen by name: All Mail, Spam and
  // Trash are sent, each message once, not once per label folder it shows in.
  return accountSource({ ...s, credentials, labels: cfg.include.length === 0 }, o);
}

export const FORWARD: Command<ForwardConfig, TransferResult> = {
  load: (args) => loadForwardConfig(rawFlags(args)),
  run: forward,
  print: printResult,
};
