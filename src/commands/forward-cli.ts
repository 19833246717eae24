import { rawOAuth2Flags } from '../auth/flags.js';
import { loadForwardConfig, type RawForwardFlags } from '../config/forward.js';
import type { CommandDeps } from './deps.js';
import { forward } from './forward.js';
import type { TransferResult } from './transfer.js';

/** `forward` from parsed yargs arguments: load the config (every problem at once), run. */
export function runForward(args: Record<string, unknown>, deps: CommandDeps): Promise<TransferResult> {
  const keys: (keyof RawForwardFlags)[] = [
    'from', 'passwordEnv', 'passwordFile', 'passwordCommand', 'tlsMode', 'tlsInsecure', 'ca', 'connections',
    'smtp', 'smtpPasswordEnv', 'smtpPasswordFile', 'smtpPasswordCommand', 'smtpTlsMode', 'smtpTlsInsecure', 'smtpCa',
    'rcpt', 'envelopeFrom', 'rate', 'archive', 'layout', 'include', 'exclude', 'batchMb', 'state',
    'since', 'before', 'maxSize', 'unseenOnly', 'dryRun', 'markSent',
    'user', 'profile', 'protocol', 'allFolders', 'maxBytesPerDay', 'maxBytesPerSecond',
  ];
  // yargs gives every declared flag (camelCased); those not given are undefined and left out.
  const raw = {
    ...(Object.fromEntries(keys.filter((k) => args[k] !== undefined).map((k) => [k, args[k]])) as RawForwardFlags),
    oauth2: rawOAuth2Flags(args),
    smtpOauth2: rawOAuth2Flags(args, 'smtp'),
  };
  return forward(loadForwardConfig(raw), deps);
}
