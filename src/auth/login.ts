import type { RemoteEndpoint } from '../endpoints/url.js';
import { registerSecret } from '../log/logger.js';
import type { Credentials } from './credentials.js';
import { commandTokens, refreshTokens, type OAuth2Spec } from './oauth2.js';
import { promptPassword } from './prompt.js';
import { readSecret, type SecretRef } from './secrets.js';

/**
 * From the checked config of one account (an AuthSpec, made by the config loader) to its
 * Credentials (the contract in credentials.ts): a password read once from its source or the TTY
 * prompt, or an OAuth2 token source (oauth2.ts).
 *
 * AuthSpec is that checked config: a password source (or the TTY prompt), or an OAuth2 token source.
 */
export type AuthSpec = { kind: 'password'; secret: SecretRef | 'prompt' } | { kind: 'oauth2'; oauth2: OAuth2Spec };

export function credentialsFor(spec: AuthSpec, endpoint: RemoteEndpoint): Credentials {
  if (spec.kind === 'oauth2') {
    return spec.oauth2.kind === 'command' ? commandTokens(spec.oauth2.command) : refreshTokens(spec.oauth2, endpoint);
  }
  let password: Promise<string> | undefined;
  const read = async (): Promise<string> => {
    if (spec.secret !== 'prompt') return readSecret(spec.secret);
    const pw = await promptPassword(`Password for ${endpoint.user}@${endpoint.host}: `);
    registerSecret(pw);
    return pw;
  };
  return {
    kind: 'password',
    renewable: false,
    get: async () => {
      password ??= read();
      password.catch(() => (password = undefined));
      return { kind: 'password', password: await password };
    },
    invalidate: () => undefined,
  };
}

