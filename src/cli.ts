import yargs, { type Argv } from 'yargs';
import { EXIT } from './domain/errors.js';

/**
 * Command and flag declarations only; no I/O here. Handlers are imported lazily in main.ts so that
 * `--help` does not load the IMAP stack.
 */
export const EXIT_CODES_HELP = [
  'Exit codes:',
  `  ${EXIT.ok}  ok`,
  `  ${EXIT.internal}  internal error (a bug: please report it)`,
  `  ${EXIT.usage}  usage or configuration error (nothing was done)`,
  `  ${EXIT.partial}  partial: some messages or folders were skipped (listed); rerun to retry them`,
  `  ${EXIT.auth}  authentication failed`,
  `  ${EXIT.network}  network or TLS error (refused, unknown host, untrusted certificate, dropped)`,
  `  ${EXIT.destination}  archive not writable (permissions, disk full)`,
  `  ${EXIT.locked}  another run holds the archive lock`,
  `  ${EXIT.interrupted}  interrupted (SIGINT/SIGTERM); the archive is consistent, rerun to resume`,
].join('\n');

export type Parsed = { command: 'backup'; args: Record<string, unknown> };

export function buildCli(argv: string[], onCommand: (p: Parsed) => void): Argv {
  return yargs(argv)
    .scriptName('mailferry')
    .usage('$0 <command> [options]')
    .command(
      'backup',
      'Back up an IMAP or POP3 account into Maildir and/or mbox archives (incremental, resumable)',
      (y) =>
        y
          .option('from', {
            type: 'string',
            describe: 'source account: imaps://USER@HOST[:993], imap://USER@HOST[:143] (STARTTLS), pop3s://USER@HOST[:995], pop3://USER@HOST[:110] (STLS)',
          })
          .option('to', { type: 'string', array: true, describe: 'archive: maildir:DIR or mbox:DIR (repeatable)' })
          .option('password-env', { type: 'string', describe: 'read the password from this environment variable' })
          .option('password-file', { type: 'string', describe: 'read the password from this file (must be mode 600)' })
          .option('password-command', { type: 'string', describe: 'run this command (no shell) and use its output as the password' })
          .option('tls-mode', { type: 'string', choices: ['tls', 'starttls', 'plain'], describe: 'override the TLS mode of the address; plain sends the password unencrypted' })
          .option('tls-insecure', { type: 'boolean', describe: 'accept any server certificate (not recommended)' })
          .option('ca', { type: 'string', describe: 'trust the CA certificate(s) in this PEM file' })
          .option('connections', { type: 'number', describe: 'parallel IMAP connections (POP3 uses one)', default: 4 })
          .option('include', { type: 'string', array: true, describe: 'only folders matching this pattern (* any, % one level, ? one char)' })
          .option('exclude', { type: 'string', array: true, describe: 'skip folders matching this pattern' })
          .option('layout', { type: 'string', choices: ['maildir++', 'fs'], default: 'maildir++', describe: 'Maildir folder layout' })
          .option('delete', { type: 'boolean', describe: 'POP3: delete from the server what every archive holds durably (after the copy, never before)' })
          .option('delete-older-than', {
            type: 'string',
            requiresArg: true,
            describe:
              'POP3, DAYS: like --delete, but keep recent mail on the server: delete only what every archive has held for more than DAYS days (a number, fractions allowed; 0 is --delete)',
          })
          .option('no-uidl', {
            type: 'boolean',
            describe:
              'POP3: name messages by a hash of their headers (TOP) and their size instead of UIDL, for servers without UIDL; identical copies are told apart by order only',
          })
          // `--no-uidl` reaches yargs as the negation of this one.
          .option('uidl', { type: 'boolean', hidden: true })
          .option('batch-mb', { type: 'number', default: 16, describe: 'bytes fetched per IMAP command, in MiB (bounds memory)' })
          .example('PW=... $0 backup --from imaps://me@imap.example.org --password-env PW --to maildir:~/mail-backup', '')
          .example('$0 backup --from imaps://me@imap.example.org --password-file ~/.imap-pw --to mbox:/srv/backup/me', '')
          .example('$0 backup --from pop3s://me@pop.example.org --password-file ~/.pop-pw --to maildir:~/mail-backup --delete-older-than 14', ''),
      (args) => onCommand({ command: 'backup', args }),
    )
    .option('json', { type: 'boolean', describe: 'write the summary as JSON on stdout' })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'print nothing but errors' })
    .option('debug', { type: 'boolean', describe: 'log protocol traffic (secrets redacted) and stack traces' })
    .demandCommand(1, 'name a command, e.g. mailferry backup --help')
    .strict()
    .epilogue(EXIT_CODES_HELP)
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .help();
}
