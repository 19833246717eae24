import yargs, { type Argv, type Options } from 'yargs';
import { DEFAULTS } from './config/defaults.js';
import { EXIT } from './domain/errors.js';

/**
 * Command and flag declarations only; no I/O here. Handlers are imported lazily in main.ts so that
 * `--help` does not load the IMAP stack. These declarations are the one list of each command's
 * flags: config/flags.ts hands what yargs parsed to the command's loader by name. Defaults are
 * the loaders' (config/defaults.ts): yargs only shows them in --help, it does not fill them in.
 */
const EXIT_MEANINGS: [number, string][] = [
  [EXIT.ok, 'ok'],
  [EXIT.internal, 'internal error (a bug: report it)'],
  [EXIT.usage, 'usage or config: nothing done'],
  [EXIT.partial, 'partial: skipped ones are listed'],
  [EXIT.auth, 'authentication failed'],
  [EXIT.network, 'network, TLS or wrong scheme'],
  [EXIT.destination, 'archive not writable'],
  [EXIT.locked, 'another run holds the lock'],
  [EXIT.budget, 'daily budget spent: resume later'],
  [EXIT.differences, 'verify: the copy differs'],
  [EXIT.interrupted, 'interrupted: a rerun resumes'],
];

/** The exit codes as a two-column table of six lines, at most 80 wide (the README has the long form). */
export const EXIT_CODES_HELP = [
  'Exit codes:',
  ...EXIT_MEANINGS.slice(0, 6).map(([code, text], i) => {
    const right = EXIT_MEANINGS[i + 6];
    const left = `  ${String(code).padEnd(4)}${text}`;
    return right === undefined ? left : `${left.padEnd(42)}${String(right[0]).padEnd(5)}${right[1]}`;
  }),
].join('\n');

export const COMMAND_NAMES = ['backup', 'restore', 'migrate', 'forward', 'folders', 'verify', 'profiles', 'batch', 'oauth2'] as const;

export type Parsed = { command: (typeof COMMAND_NAMES)[number]; args: Record<string, unknown> };

const TRANSFER_STATE =
  'State (what is on the target; no secret): $XDG_STATE_HOME/mailferry/target-<hash>.json (else ~/.local/state/mailferry/), ' +
  'a .lock beside it. A rerun appends only what is new.';

const FORWARD_STATE =
  'State: a message is recorded once the relay took it (250): $XDG_STATE_HOME/mailferry/forward-<hash>.json ' +
  '(else ~/.local/state/mailferry/), a .lock beside it; a rerun sends only what is new (a kill between a 250 and its ' +
  'record: that one again). Refused (5xx) or deferred (4xx): listed, exit 3, tried again next run.';

/** A default for --help (as yargs would print it), filled in by the loader, not by yargs. */
function shown(value: string | number): Pick<Options, 'defaultDescription'> {
  return { defaultDescription: typeof value === 'string' ? `"${value}"` : String(value) };
}

/** Flags several commands share; `who` prefixes the description ("source: "), `prefix` the name. */
export function passwordFlags(who = '', prefix = ''): Record<string, Options> {
  return {
    [`${prefix}password-env`]: { type: 'string', describe: `${who}read the password from this environment variable` },
    [`${prefix}password-file`]: { type: 'string', describe: `${who}read the password from this file (must be mode 600)` },
    [`${prefix}password-command`]: { type: 'string', describe: `${who}run this command (no shell) and use its output as the password` },
  };
}

/**
 * OAuth2 instead of a password (src/auth/): a token command, or the built-in refresh flow. Secrets
 * by reference only. With `prefix` 'target-' or 'smtp-' for another account of the same command.
 */
export function oauth2Flags(who = '', prefix = ''): Record<string, Options> {
  const o = `${prefix}oauth2-`;
  const detail = (describe: string): Options => ({ type: 'string', describe: `${who}OAuth2: ${describe}` });
  return {
    [`${o}token-command`]: { type: 'string', describe: `${who}OAuth2: run this command (no shell) for an access token` },
    [`${o}token-url`]: {
      type: 'string',
      describe: `${who}OAuth2 refresh flow: token URL, google or microsoft`,
    },
    [`${o}client-id`]: detail('the client id'),
    [`${o}client-secret-env`]: detail('read the client secret from this environment variable'),
    [`${o}client-secret-file`]: detail('read the client secret from this file (mode 600)'),
    [`${o}refresh-token-env`]: detail('read the refresh token from this environment variable'),
    [`${o}refresh-token-file`]: detail('read the refresh token from this file (mode 600)'),
    [`${o}refresh-token-command`]: detail('run this command (no shell) for the refresh token'),
  };
}

/**
 * A prefixed account (target-, smtp-) is a command's second one: its shown flag's description
 * refers to the first account's.
 */
function alike(who: string, prefix: string, flag: string, describe: string): Options {
  return { type: 'string', describe: prefix === '' ? `${who}${describe}` : `${who}as --${flag}, each named --${prefix}...` };
}

/**
 * One account's password and OAuth2 flags. --help shows one line for them all (the first, naming
 * the others: they are alternatives), --show-hidden lists each (ACCOUNT_DETAILS).
 */
function credentialFlags(who = '', prefix = ''): Record<string, Options> {
  const describe = 'password from this env variable; or --password-file|-command, --oauth2-token-command|-url';
  // Overrides the first key in place: it stays the first line.
  return { ...passwordFlags(who, prefix), ...oauth2Flags(who, prefix), [`${prefix}password-env`]: alike(who, prefix, 'password-env', describe) };
}

/** One account's TLS flags: --ca shown, naming the rarely needed others (ACCOUNT_DETAILS). */
function tlsFlags(who = '', prefix = ''): Record<string, Options> {
  return {
    [`${prefix}tls-mode`]: {
      type: 'string',
      choices: ['tls', 'starttls', 'plain'],
      describe: `${who}override the address's TLS mode (plain: the password unencrypted)`,
    },
    [`${prefix}tls-insecure`]: { type: 'boolean', describe: `${who}accept any server certificate (not recommended)` },
    [`${prefix}ca`]: alike(who, prefix, 'ca', 'trust CAs in this PEM file; --tls-insecure, --tls-mode'),
  };
}

/** One account's secrets and TLS (backup, folders and forward have one; restore's is the target). */
function accountFlags(who = '', prefix = ''): Record<string, Options> {
  return { ...credentialFlags(who, prefix), ...tlsFlags(who, prefix) };
}

/**
 * One IMAP account's secrets, TLS and connections (migrate and verify have two: the source's and,
 * prefixed, the target's, whose --target-connections is named in the source's line).
 */
function imapAccountFlags(who = '', prefix = ''): Record<string, Options> {
  const connections = prefix === '' ? 'parallel connections (--target-connections)' : 'parallel IMAP connections';
  return {
    ...accountFlags(who, prefix),
    [`${prefix}connections`]: { type: 'number', describe: `${who}${connections}`, ...shown(DEFAULTS.connections) },
  };
}

/** backup, migrate, restore: verify the copy right after it (commands/verify.ts thenVerify). */
const VERIFY_FLAG: Record<string, Options> = {
  verify: { type: 'string', describe: 'then verify the copy (=full: digests too); exit 9 if it differs' },
};

/** Every command that reads a mail server: the most bytes one message may take (drivers/message-limit.ts). */
const MESSAGE_SIZE_FLAG: Record<string, Options> = {
  'max-message-size': {
    type: 'string',
    requiresArg: true,
    ...shown('1024M'),
    hidden: true,
    describe: 'skip (and report) a message over BYTES (or NK, NM), or sent larger than announced',
  },
};

const FOLDER_FLAGS: Record<string, Options> = {
  include: { type: 'string', array: true, describe: 'only folders matching this pattern (* any, % one level, ? one char)' },
  exclude: { type: 'string', array: true, describe: 'skip folders matching this pattern' },
};

/** backup, restore, migrate (and what else reads a Source): which messages to copy (sources/filter.ts). */
export const FILTER_FLAGS: Record<string, Options> = {
  since: { type: 'string', requiresArg: true, describe: 'only messages from DATE: YYYY-MM-DD, ISO time, or 7d/2w/3m/1y ago' },
  before: { type: 'string', requiresArg: true, describe: 'only messages dated before DATE (the same forms)' },
  'max-size': { type: 'string', requiresArg: true, describe: 'only messages of at most BYTES (or NK, NM: 1024-based)' },
  'unseen-only': { type: 'boolean', describe: 'only messages without \\Seen (not POP3: it has no flags)' },
};

/** backup, forward: stay after the run and copy new mail as it comes (config/watch.ts, pipeline/watch.ts). */
const WATCH_FLAGS: Record<string, Options> = {
  watch: {
    type: 'boolean',
    describe: 'after the run, stay and copy new mail as it comes (IMAP IDLE, POP3 polls); SIGTERM: 0 idle, 130 mid-pass; --watch-* flags: --show-hidden',
  },
  'watch-interval': { type: 'string', requiresArg: true, describe: 'with --watch: a full incremental pass this often (90s, 15m, 1h)', ...shown(DEFAULTS.watchInterval) },
  'watch-folders': { type: 'string', array: true, requiresArg: true, describe: 'with --watch: IMAP folders to IDLE on besides INBOX (one connection each)' },
  'watch-heartbeat': { type: 'string', requiresArg: true, describe: 'with --watch: a heartbeat this often (--json: {"type":"heartbeat"}; else the --log-file at debug)', ...shown(DEFAULTS.watchHeartbeat) },
};

/** restore and migrate: where the target's state lives, folder mapping, dry run. */
const TARGET_FLAGS: Record<string, Options> = {
  state: { type: 'string', describe: 'file of what is already on the target (default: see below)' },
  map: {
    type: 'string',
    array: true,
    requiresArg: true,
    describe:
      'OLD=NEW: source folder OLD into target folder NEW ("/" between levels; OLD/*=NEW/* a subtree; repeatable; before Sent, Trash... roles)',
  },
  'dry-run': { type: 'boolean', describe: 'print the folders, messages, bytes to copy; change nothing' },
  'sync-deletions': {
    type: 'boolean',
    describe:
      'also remove from the target what mailferry copied there and the source no longer has (UIDPLUS; no filters)',
  },
};

/** backup: the account from a provider profile, and the limits (src/profiles/). */
const PROFILE_FLAGS: Record<string, Options> = {
  user: { type: 'string', describe: 'the account\'s e-mail address, instead of --from (its profile)' },
  profile: { type: 'string', describe: 'provider profile: gmail, outlook, ... or ./my.json' },
  protocol: { type: 'string', choices: ['imap', 'pop3'], describe: 'with --user: which server of the profile (default imap)' },
  'all-folders': { type: 'boolean', describe: 'also the folders the profile skips as repeats (Gmail\'s Starred)' },
  'max-bytes-per-day': { type: 'string', describe: 'stop cleanly after this much per UTC day, e.g. 2500MB (0: none)' },
  'max-bytes-per-second': { type: 'string', describe: 'download no faster than this, e.g. 2M or 500k' },
};

const RATE_FLAG: Record<string, Options> = { 'max-bytes-per-second': PROFILE_FLAGS['max-bytes-per-second'] as Options };

/** restore: the target account by address and profile, and its daily upload budget. */
const RESTORE_PROFILE_FLAGS: Record<string, Options> = {
  user: { type: 'string', describe: 'the target account as an e-mail address, instead of --to: the server comes from its provider\'s profile' },
  profile: { type: 'string', describe: 'the target\'s provider profile by name or file (./my.json); default: from the domain of --user' },
  'max-bytes-per-day': { type: 'string', describe: 'upload at most this much per UTC day into the target, e.g. 500MB (default: the profile\'s limit; 0: none); the next run resumes' },
  ...RATE_FLAG,
};

/** migrate: both accounts by address and profile; the source's download and the target's upload budgets. */
const MIGRATE_PROFILE_FLAGS: Record<string, Options> = {
  user: { type: 'string', describe: 'source: an e-mail address for --from, the server from its profile' },
  profile: { type: 'string', describe: 'source: profile by name or file (./my.json); default: by domain' },
  'target-user': { type: 'string', describe: 'target: an e-mail address for --to, the server from its profile' },
  'target-profile': { type: 'string', describe: 'target: profile by name or file; default: by domain' },
  'all-folders': PROFILE_FLAGS['all-folders'] as Options,
  'max-bytes-per-day': { type: 'string', describe: 'source: at most this per UTC day (0: none; default: profile\'s)' },
  ...RATE_FLAG,
};

/** The flags every command takes, shown once in `mailferry --help` and named in one line under each command's. */
const GLOBAL_FLAGS = ['config', 'log-file', 'json', 'quiet', 'debug', 'help', 'version', 'show-hidden'];
const GLOBALS_HELP = 'Global options (mailferry --help): --config FILE, --log-file FILE, --json, -q/--quiet, --debug, -h/--help, -V/--version; --show-hidden: every flag';

/** Flags few need (tuning), listed with --show-hidden. */
const ADVANCED = ['batch-mb', 'no-uidl', 'layout', 'protocol'];

/**
 * Listed with --show-hidden, each named in a shown flag's description: an account's password and
 * OAuth2 alternatives (in --password-env's), the OAuth2 refresh flow's details (in
 * --oauth2-token-url's), the rarer TLS flags (in --ca's), the target's connections (in
 * --connections'), and --watch's details (in --watch's).
 */
const ACCOUNT_DETAILS = [
  ...['', 'target-', 'smtp-'].flatMap((p) =>
    [
      'password-file',
      'password-command',
      'oauth2-token-command',
      'oauth2-token-url',
      ...['client-id', 'client-secret-env', 'client-secret-file', 'refresh-token-env', 'refresh-token-file', 'refresh-token-command'].map((d) => `oauth2-${d}`),
      'tls-insecure',
      'tls-mode',
    ].map((d) => `${p}${d}`),
  ),
  'target-connections',
  'watch-interval',
  'watch-folders',
  'watch-heartbeat',
];

/**
 * A command's help lists its own flags (ACCOUNT_DETAILS, ADVANCED and `rare` only with --show-hidden, so
 * that it stays short: at most 60 lines at 100 columns, test/e2e/help.test.ts); the global ones
 * are named in its epilogue.
 */
function commandHelp(y: Argv, all: boolean, rare: string[] = []): Argv {
  return [...GLOBAL_FLAGS, ...(all ? [] : [...ACCOUNT_DETAILS, ...ADVANCED, ...rare])].reduce((a, k) => a.hide(k), y);
}

/** A command's epilogue: its own notes, the global flags, the exit codes. */
function commandEpilogue(...notes: string[]): string {
  return [...notes, GLOBALS_HELP, EXIT_CODES_HELP].join('\n\n');
}

const IMAP_TARGET = 'target: imaps://USER@HOST[:993], imap://USER@HOST[:143] (STARTTLS)';

export function buildCli(argv: string[], onCommand: (p: Parsed) => void): Argv {
  const all = argv.includes('--show-hidden');
  return yargs(argv)
    .scriptName('mailferry')
    .usage('$0 <command> [options]')
    .command(
      'backup',
      'Back up an IMAP or POP3 account into Maildir and/or mbox archives (incremental, resumable)',
      (y) =>
        commandHelp(y, all)
          .option('from', {
            type: 'string',
            describe: 'imaps://USER@HOST (port 993), imap:// (143, STARTTLS), pop3s:// (995), pop3:// (110)',
          })
          .option('to', { type: 'string', array: true, describe: 'archive: maildir:DIR or mbox:DIR (repeatable)' })
          .options(accountFlags())
          .option('connections', { type: 'number', describe: 'parallel IMAP connections (POP3 uses one)', ...shown(DEFAULTS.connections) })
          .options(FOLDER_FLAGS)
          .options(VERIFY_FLAG)
          .options(FILTER_FLAGS)
          .option('layout', { type: 'string', choices: ['maildir++', 'fs'], ...shown(DEFAULTS.layout), describe: 'Maildir folder layout' })
          .option('delete', { type: 'boolean', describe: 'POP3: then delete from the server what every archive holds' })
          .option('delete-older-than', {
            type: 'string',
            requiresArg: true,
            describe: 'POP3: like --delete, only what was archived over DAYS days ago',
          })
          .option('no-uidl', {
            type: 'boolean',
            describe: 'POP3 without UIDL: name messages by a header hash and size (TOP)',
          })
          // `--no-uidl` reaches yargs as the negation of this one.
          .option('uidl', { type: 'boolean', hidden: true })
          .option('batch-mb', { type: 'number', ...shown(DEFAULTS.batchMb), describe: 'MiB fetched per IMAP command (bounds memory)' })
          .options(MESSAGE_SIZE_FLAG)
          .options(PROFILE_FLAGS)
          .option('dry-run', { alias: 'check', type: 'boolean', describe: 'log in, list what is new in each folder; write nothing' })
          .options(WATCH_FLAGS)
          .example('PW=... $0 backup --from imaps://me@imap.example.org --password-env PW --to maildir:~/mail-backup', '')
          .example('$0 backup --user me@gmail.com --password-file ~/.gmail-app-pw --to maildir:~/mail-backup', '')
          .epilogue(commandEpilogue()),
      (args) => onCommand({ command: 'backup', args }),
    )
    .command(
      'restore',
      'Restore a Maildir or mbox archive into an IMAP account (APPEND with flags and dates; resumable)',
      (y) =>
        commandHelp(y, all)
          .option('from', { type: 'string', describe: 'the archive: maildir:DIR or mbox:DIR (as mailferry backup writes them)' })
          .option('to', { type: 'string', describe: IMAP_TARGET })
          .options(accountFlags('target: '))
          .option('connections', { type: 'number', describe: 'parallel IMAP connections to the target', ...shown(DEFAULTS.connections) })
          .options(FOLDER_FLAGS)
          .options(VERIFY_FLAG)
          .options(FILTER_FLAGS)
          .option('layout', { type: 'string', choices: ['maildir++', 'fs'], ...shown(DEFAULTS.layout), describe: 'layout of the Maildir archive' })
          .option('labels', { type: 'string', choices: ['folders', 'keywords'], describe: 'a Gmail archive into another server: folders as they are (default), or each message once, other labels as keywords' })
          .options(TARGET_FLAGS)
          .options(RESTORE_PROFILE_FLAGS)
          .option('batch-mb', { type: 'number', ...shown(DEFAULTS.batchMb), describe: 'bytes read per batch, in MiB (bounds memory)' })
          .example('PW=... $0 restore --from maildir:~/mail-backup --to imaps://me@imap.example.org --password-env PW', '')
          .epilogue(commandEpilogue(TRANSFER_STATE)),
      (args) => onCommand({ command: 'restore', args }),
    )
    .command(
      'migrate',
      'Copy an IMAP account into another one (APPEND with flags and dates), optionally archiving it too',
      (y) =>
        commandHelp(y, all)
          .option('from', {
            type: 'string',
            describe: 'source account: imaps://USER@HOST[:993], imap://USER@HOST[:143] (STARTTLS), or pop3s:// / pop3:// (its INBOX only)',
          })
          .option('to', { type: 'string', describe: IMAP_TARGET })
          .options(imapAccountFlags('source: '))
          .options(imapAccountFlags('target: ', 'target-'))
          .option('archive', { type: 'string', array: true, describe: 'also keep a local copy: maildir:DIR or mbox:DIR (repeatable)' })
          .option('labels', {
            type: 'string',
            choices: ['folders', 'keywords'],
            describe: 'from Gmail: a folder per label (default), or each message once, the other labels as keywords',
          })
          .options(FOLDER_FLAGS)
          .options(VERIFY_FLAG)
          .options(FILTER_FLAGS)
          .option('layout', { type: 'string', choices: ['maildir++', 'fs'], ...shown(DEFAULTS.layout), describe: 'layout of --archive maildir: folders' })
          .options(TARGET_FLAGS)
          .options(MIGRATE_PROFILE_FLAGS)
          .option('batch-mb', { type: 'number', ...shown(DEFAULTS.batchMb), describe: 'bytes fetched per IMAP command, in MiB (bounds memory)' })
          .options(MESSAGE_SIZE_FLAG)
          .options(WATCH_FLAGS)
          .example('A=... B=... $0 migrate --from imaps://me@old.example.org --password-env A --to imaps://me@new.example.org --target-password-env B', '')
          .epilogue(commandEpilogue(TRANSFER_STATE)),
      (args) => onCommand({ command: 'migrate', args }),
    )
    .command(
      'forward',
      'Send new mail of an IMAP or POP3 account (or archive) to an address via an SMTP relay, once each',
      (y) =>
        commandHelp(y, all)
          .option('from', {
            type: 'string',
            describe: 'source: pop3s://USER@HOST, pop3://USER@HOST (STLS), imaps://USER@HOST, imap://USER@HOST (STARTTLS), maildir:DIR or mbox:DIR (or --user)',
          })
          .options(PROFILE_FLAGS)
          .options(accountFlags('source: '))
          .option('connections', { type: 'number', describe: 'source: parallel IMAP connections', ...shown(DEFAULTS.connections) })
          .option('smtp', { type: 'string', describe: 'relay: smtps://[USER@]HOST[:465] (TLS) or smtp://[USER@]HOST[:587] (STARTTLS required); AUTH only with a USER' })
          .options(accountFlags('relay: ', 'smtp-'))
          .option('rcpt', { type: 'string', describe: 'the address every message is sent to (RCPT TO)' })
          .option('envelope-from', {
            type: 'string',
            describe: 'MAIL FROM (where bounces of the forward go): an address or "<>"; default the relay user when it is an address, else --rcpt',
          })
          .option('rate', { type: 'string', describe: 'at most N messages per second, minute or hour, evenly: N/s, N/m, N/h' })
          .option('archive', { type: 'string', array: true, describe: 'also keep a local copy: maildir:DIR or mbox:DIR (repeatable)' })
          .options(FOLDER_FLAGS)
          .options(FILTER_FLAGS)
          .option('layout', { type: 'string', choices: ['maildir++', 'fs'], ...shown(DEFAULTS.layout), describe: 'layout of Maildir archives (read and written)' })
          .option('state', { type: 'string', describe: 'file of what was forwarded (default: see below)' })
          .option('dry-run', { type: 'boolean', describe: 'print the folders, messages, bytes to forward; send nothing' })
          .option('mark-sent', {
            type: 'boolean',
            describe: 'record what would be forwarded as sent; send nothing (start now)',
          })
          .option('batch-mb', { type: 'number', ...shown(DEFAULTS.batchMb), describe: 'bytes fetched per IMAP command, in MiB (bounds memory)' })
          .options(MESSAGE_SIZE_FLAG)
          .options(WATCH_FLAGS)
          .example('PW=... SMTP_PW=... $0 forward --from pop3s://me@old.example.org --password-env PW --smtp smtps://me@new.example.org@smtp.new.example.org --smtp-password-env SMTP_PW --rcpt me@new.example.org --rate 30/m', '')
          .epilogue(commandEpilogue(FORWARD_STATE)),
      (args) => onCommand({ command: 'forward', args }),
    )
    .command(
      'folders',
      'List the folders of an account: messages, size, special-use role, and what a backup would skip and why',
      (y) =>
        commandHelp(y, all)
          .option('from', { type: 'string', describe: 'the account: imaps://USER@HOST[:993], imap://USER@HOST[:143] (STARTTLS), pop3s:// or pop3:// (its INBOX)' })
          .options(accountFlags())
          .options(FOLDER_FLAGS)
          .option('user', PROFILE_FLAGS['user'] as Options)
          .option('profile', PROFILE_FLAGS['profile'] as Options)
          .option('protocol', PROFILE_FLAGS['protocol'] as Options)
          .option('all-folders', PROFILE_FLAGS['all-folders'] as Options)
          .example('$0 folders --user me@gmail.com --password-file ~/.gmail-app-pw', '')
          .epilogue(commandEpilogue()),
      (args) => onCommand({ command: 'folders', args }),
    )
    .command(
      'verify',
      'Prove a copy message by message (only reads): give it the flags of the command that made it',
      (y) =>
        // The budgets only pace a copy: accepted, listed with --show-hidden.
        commandHelp(y, all, ['max-bytes-per-day', 'max-bytes-per-second'])
          .option('from', { type: 'string', describe: 'the source, as the copy was given it: an IMAP or POP3 account, or (after a restore) maildir:DIR or mbox:DIR' })
          .option('to', { type: 'string', array: true, describe: 'the copy: maildir:DIR or mbox:DIR (after a backup, repeatable), or the IMAP account (after a migrate or restore)' })
          .option('quick', { type: 'boolean', describe: 'compare ids, sizes, headers, flags and dates only; not the bodies (default: full, content digests)' })
          .option('ignore', { type: 'string', array: true, describe: 'do not report nor count these differences: flags, dates, extra (comma-separated)' })
          .options(imapAccountFlags())
          .options(imapAccountFlags('target: ', 'target-'))
          .option('archive', { type: 'string', array: true, describe: 'after a migrate: its local archives, verified too' })
          .options(FOLDER_FLAGS)
          .options(FILTER_FLAGS)
          .option('layout', { type: 'string', choices: ['maildir++', 'fs'], ...shown(DEFAULTS.layout), describe: 'Maildir layout' })
          .option('map', TARGET_FLAGS['map'] as Options)
          .option('labels', { type: 'string', choices: ['folders', 'keywords'], describe: 'Gmail: as the copy was given it' })
          .options(MIGRATE_PROFILE_FLAGS)
          .option('user', { type: 'string', describe: 'as the copy had it: source (backup, migrate), target (restore)' })
          .option('profile', { type: 'string', describe: 'provider profile of --user, by name or file (./my.json); default: from the domain of --user' })
          .option('protocol', PROFILE_FLAGS['protocol'] as Options)
          .option('no-uidl', { type: 'boolean', describe: 'POP3: as the backup was given it' })
          .option('uidl', { type: 'boolean', hidden: true })
          .option('batch-mb', { type: 'number', ...shown(DEFAULTS.batchMb), describe: 'bytes read per batch, in MiB (bounds memory)' })
          .options(MESSAGE_SIZE_FLAG)
          // What only changes what a copy does: accepted so that its command line works as is.
          .options(Object.fromEntries(['delete', 'dry-run', 'sync-deletions'].map((k) => [k, { type: 'boolean', hidden: true } as Options])))
          .options(Object.fromEntries(['delete-older-than', 'state', 'verify'].map((k) => [k, { type: 'string', hidden: true } as Options])))
          .example('$0 verify --from imaps://me@imap.example.org --password-file ~/.imap-pw --to maildir:~/mail-backup', '')
          .example('A=... B=... $0 verify --from imaps://me@old.example.org --password-env A --to imaps://me@new.example.org --target-password-env B --quick', '')
          .epilogue(
            commandEpilogue(
              'Exit 0: the copy holds every message of the source (as the copy command selects and maps them) with the same bytes, flags and dates; ' +
                `${EXIT.differences}: differences found, each listed (--json: one line each). Reads only: EXAMINE and BODY.PEEK on servers, no lock, no state written.`,
            ),
          ),
      (args) => onCommand({ command: 'verify', args }),
    )
    .command(
      'batch <file>',
      'Run many backup, migrate, restore and forward jobs from one CSV or JSON-lines file (one row per account), N at once, any share of it on each machine',
      (y) =>
        commandHelp(y, all)
          .positional('file', { type: 'string', describe: 'the batch: CSV with a header, or JSON lines; a "command" column and that command\'s long flag names (secrets by reference only)' })
          .option('jobs', { type: 'number', describe: 'rows run at once on this machine', ...shown(DEFAULTS.jobs) })
          .option('shard', { type: 'string', describe: 'I/N: run only the rows whose identity (command, source, destinations) hashes into shard I of N' })
          .option('shards', { type: 'number', describe: 'N, with the shard index from $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job, 0-based)' })
          .option('report', { type: 'string', describe: 'the report file (JSON lines; CSV when it ends in .csv), or a directory for it (default: beside FILE)' })
          // Set by `mailferry --config FILE` with a "jobs" list (batch/file.ts): no report unless --report.
          .option('of-config', { type: 'boolean', hidden: true })
          .options(VERIFY_FLAG)
          .example('$0 batch accounts.csv --jobs 4 --verify', '')
          .example('$0 batch accounts.csv --shard 2/3 --report /srv/reports/', '')
          .epilogue(commandEpilogue('Every row is checked before any starts (every problem listed, exit 2). A failing row does not stop the others; the batch exits with its worst row\'s code, and the report has one line per row. See docs/batch.md.')),
      (args) => onCommand({ command: 'batch', args }),
    )
    .command(
      'oauth2 <action>',
      'Authorize mailferry with an OAuth2 provider once: stores a refresh token (mode 0600) and prints the flags that use it',
      (y) =>
        commandHelp(y, all)
          .positional('action', { type: 'string', choices: ['authorize'], describe: 'authorize: the device-code flow where the provider has one, else a browser and a loopback redirect' })
          .option('provider', { type: 'string', choices: ['google', 'microsoft'], describe: 'the endpoints and scope of a big provider' })
          .option('profile', { type: 'string', describe: 'the OAuth2 settings of a provider profile (default: from the domain of --user)' })
          .option('user', { type: 'string', describe: 'the account to authorize (a login hint; picks the profile)' })
          .option('client-id', { type: 'string', describe: 'the OAuth2 client registered with the provider' })
          .option('client-secret-env', { type: 'string', describe: 'read the client secret from this environment variable' })
          .option('client-secret-file', { type: 'string', describe: 'read the client secret from this file (mode 600)' })
          .option('refresh-token-file', { type: 'string', describe: 'store the refresh token in this file (mode 600, replaced if present)' })
          .option('scope', { type: 'string', describe: 'the scopes to ask for (default: the provider\'s mail scopes)' })
          .option('flow', { type: 'string', choices: ['device', 'code'], describe: 'device: enter a code on any device; code: a browser on this machine (default: device for microsoft, code else)' })
          .option('auth-url', { type: 'string', describe: 'another provider: its authorization endpoint' })
          .option('token-url', { type: 'string', describe: 'another provider: its token endpoint' })
          .option('device-url', { type: 'string', describe: 'another provider: its device authorization endpoint (RFC 8628)' })
          .option('wait', { type: 'number', hidden: true, describe: 'seconds to wait for the browser\'s redirect (code flow)', ...shown(300) })
          .example('$0 oauth2 authorize --provider microsoft --client-id ID --refresh-token-file ~/.outlook-rt', '')
          .example('$0 oauth2 authorize --user me@gmail.com --client-id ID --client-secret-file ~/.gsecret --refresh-token-file ~/.gmail-rt', '')
          .epilogue(commandEpilogue('Instructions (URL, code) go to stderr; the flags to give backup, migrate and the others to stdout. No token is ever printed. Denied or expired: exit 4.')),
      (args) => onCommand({ command: 'oauth2', args }),
    )
    .command(
      'profiles',
      'List the provider profiles (servers, folders skipped, limits) that --user and --profile use',
      (y) => commandHelp(y, all).epilogue(commandEpilogue()),
      (args) => onCommand({ command: 'profiles', args }),
    )
    .option('config', {
      type: 'string',
      describe: 'read flags from this JSON file ({"command": "backup", "from": ..., "passwordFile": ...}; several: {"jobs": [...]}); flags on the command line win',
    })
    .option('log-file', { type: 'string', describe: 'append a timestamped log of the run (info level, and the summary) to this file' })
    .option('json', { type: 'boolean', describe: 'write JSON lines on stdout: progress events and a final summary object' })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'print nothing but errors' })
    .option('debug', { type: 'boolean', describe: 'log protocol traffic (secrets redacted) and stack traces' })
    .demandCommand(1, 'name a command, e.g. mailferry backup --help')
    .strict()
    .recommendCommands()
    .epilogue(EXIT_CODES_HELP)
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .help()
    .alias('help', 'h')
    .option('show-hidden', { type: 'boolean', describe: 'with --help: every flag (the OAuth2 refresh flow\'s details, tuning)' })
    .version()
    .alias('version', 'V');
}
