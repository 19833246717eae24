import { loadForwardConfig, type RawForwardFlags } from '../config/forward.js';
import type { RunReport } from '../report.js';
import type { CommandDeps } from './backup.js';
import { forward } from './forward.js';

/** `forward` from parsed yargs arguments: load the config (every problem at once), run, print. */
export async function runForward(
  args: Record<string, unknown>,
  deps: CommandDeps,
  print: (report: RunReport, extra: Record<string, unknown>) => number,
): Promise<number> {
  const keys: (keyof RawForwardFlags)[] = [
    'from', 'passwordEnv', 'passwordFile', 'passwordCommand', 'tlsMode', 'tlsInsecure', 'ca', 'connections',
    'smtp', 'smtpPasswordEnv', 'smtpPasswordFile', 'smtpPasswordCommand', 'smtpTlsMode', 'smtpTlsInsecure', 'smtpCa',
    'rcpt', 'envelopeFrom', 'rate', 'archive', 'layout', 'include', 'exclude', 'batchMb', 'state',
    'since', 'before', 'maxSize', 'unseenOnly',
  ];
  // yargs gives every declared flag (camelCased); those not given are undefined and left out.
  const raw = Object.fromEntries(keys.filter((k) => args[k] !== undefined).map((k) => [k, args[k]])) as RawForwardFlags;
  const result = await forward(loadForwardConfig(raw), deps);
  return print(result.report, { state: result.statePath });
}
