import { join } from 'node:path';
import type { DovecotServer } from '../../scripts/dev/dovecot.js';
import { runCliJson, type JsonResult } from './cli.js';
import type { Account } from './server.js';

/**
 * `mailferry migrate --json` from `source` (imaps://, or pop3s://) to `target` over imaps:// (each server's CA trusted),
 * passwords in the environment, the target state under `stateHome`.
 */
export function migrateJson(
  from: { server: DovecotServer; user: Account; scheme?: 'imaps' | 'pop3s' },
  to: { server: DovecotServer; user: Account },
  stateHome: string,
  extra: string[] = [],
): Promise<JsonResult> {
  return runCliJson(
    [
      'migrate', '--json',
      '--from', `${from.scheme ?? 'imaps'}://${from.user.name}@127.0.0.1:${from.scheme === 'pop3s' ? from.server.pop3sPort : from.server.imapsPort}`, '--ca', from.server.caFile, '--password-env', 'PW',
      '--to', `imaps://${to.user.name}@127.0.0.1:${to.server.imapsPort}`, '--target-ca', to.server.caFile, '--target-password-env', 'TPW',
      ...extra,
    ],
    { PW: from.user.password, TPW: to.user.password, XDG_STATE_HOME: join(stateHome, 'state') },
  );
}
