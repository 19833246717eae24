/** The OAuth2 flags of one account as parsed (`--oauth2-*`, `--target-oauth2-*`, `--smtp-oauth2-*`). */
export interface RawOAuth2Flags {
  tokenCommand?: string;
  tokenUrl?: string;
  clientId?: string;
  clientSecretEnv?: string;
  clientSecretFile?: string;
  refreshTokenEnv?: string;
  refreshTokenFile?: string;
  refreshTokenCommand?: string;
}

const KEYS: (keyof RawOAuth2Flags)[] = [
  'tokenCommand',
  'tokenUrl',
  'clientId',
  'clientSecretEnv',
  'clientSecretFile',
  'refreshTokenEnv',
  'refreshTokenFile',
  'refreshTokenCommand',
];

/** Pick the OAuth2 flags of one account out of yargs' camel-cased args; `prefix` '' or e.g. 'target'. */
export function rawOAuth2Flags(args: Record<string, unknown>, prefix = ''): RawOAuth2Flags {
  const out: RawOAuth2Flags = {};
  for (const k of KEYS) {
    const name = prefix === '' ? `oauth2${k[0]?.toUpperCase() ?? ''}${k.slice(1)}` : `${prefix}Oauth2${k[0]?.toUpperCase() ?? ''}${k.slice(1)}`;
    const v = args[name];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}
