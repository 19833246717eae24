import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where mailferry keeps what lives on this machine rather than in an archive: a target's state
 * (restore, migrate), a forward's record, daily budgets, the OAuth2 token cache.
 * `$XDG_STATE_HOME/mailferry`, else `~/.local/state/mailferry`.
 */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_STATE_HOME'];
  // The XDG spec: a relative path is invalid and must be ignored.
  const base = xdg !== undefined && xdg.startsWith('/') ? xdg : join(homedir(), '.local', 'state');
  return join(base, 'mailferry');
}
