import { formatBytes } from './bytes.js';
import { loadProfiles } from './load.js';
import type { Profile, ServerSettings } from './schema.js';

/** `mailferry profiles`: one block per profile on stdout, or one JSON array with `--json`. */
export function printProfiles(json: boolean, write: (s: string) => void = (s) => process.stdout.write(s)): number {
  const profiles = loadProfiles();
  if (json) write(`${JSON.stringify(profiles)}\n`);
  else write(`${profiles.map(profileText).join('\n\n')}\n`);
  return 0;
}

const server = (s: ServerSettings | undefined): string => (s === undefined ? '-' : `${s.host}:${s.port} ${s.tls}`);

export function profileText(p: Profile): string {
  const limits = [
    p.limits.connections === undefined ? undefined : `${p.limits.connections} connections`,
    p.limits.downloadBytesPerDay === undefined ? undefined : `IMAP ${formatBytes(p.limits.downloadBytesPerDay)}/day down`,
    p.limits.uploadBytesPerDay === undefined ? undefined : `${formatBytes(p.limits.uploadBytesPerDay)}/day up`,
    p.limits.pop3BytesPerDay === undefined ? undefined : `POP3 ${formatBytes(p.limits.pop3BytesPerDay)}/day`,
    p.limits.maxAppendBytes === undefined ? undefined : `messages up to ${formatBytes(p.limits.maxAppendBytes)}`,
  ].filter((x) => x !== undefined);
  return [
    `${p.name}: ${p.description}`,
    `  domains: ${p.domains.length > 0 ? p.domains.join(' ') : '(none: name it with --profile)'}`,
    `  imap ${server(p.imap)}   pop3 ${server(p.pop3)}   smtp ${server(p.smtp)}`,
    ...(p.folders.skip.length > 0 ? [`  skipped unless --all-folders: ${p.folders.skip.join(', ')}`] : []),
    ...(limits.length > 0 ? [`  limits: ${limits.join(', ')}`] : []),
    `  sign-in: ${p.auth.methods.join(', ')}`,
    ...p.notes.map((n) => `  - ${n}`),
  ].join('\n');
}
