/**
 * A throwaway Dovecot for tests, the demo and the benchmark. Listens on 127.0.0.1 only, on free
 * ports, with everything (config, TLS certs, homes, sockets, state, log) under one directory, so
 * several may run at once. Dovecot runs in the foreground (`dovecot -F -c <conf>`) as our child.
 *
 * Mail processes run as nobody/nogroup (Dovecot refuses mail uid 0), so every home and every
 * directory handed to Dovecot as a mail location must be owned by nobody (see chownToMailUser).
 *
 * Serving an existing Maildir tree (e.g. a mailferry archive) as a user's mail, measured on 2.3.19:
 * - Maildir++ (INBOX = <dir>, folders `.A.B`, UTF-8 names on disk): `maildir:<dir>:UTF-8`.
 *   Without `:UTF-8` on-disk names are read as modified UTF-7. A folder name cannot contain '.'.
 * - LAYOUT=fs (INBOX = <dir> itself, folders `A/B`): `maildir:<dir>:LAYOUT=fs:UTF-8`;
 *   add `:INBOX=<dir>/INBOX` to take INBOX from a subdirectory instead.
 * - dovecot-keywords (one per folder dir) is honoured. The tree must be writable by nobody:
 *   Dovecot writes dovecot-uidlist, dovecot-uidvalidity*, index files and dotlocks into it and
 *   moves new/ to cur/, so serve a copy. A root-owned tree is served only with
 *   `:INDEX=MEMORY:CONTROL=~/control`, and then dovecot-keywords is looked up in CONTROL, so
 *   keywords come back as `unknown-N`.
 * - The internal date is the file's mtime. Paths may not contain whitespace (passwd-file).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface UserSpec {
  name: string;
  password: string;
  /** Dovecot mail_location for this user; default `maildir:~/Maildir` (Maildir++ layout). */
  mailLocation?: string;
  /**
   * Quota of this user (needs StartOptions.quota): `storage` e.g. '200k' (quota_rule
   * `*:storage=`), `maxMailSize` e.g. '20k' (quota_max_mail_size). Change it while running with
   * addUser (the passwd-file is re-read).
   */
  quota?: { storage?: string; maxMailSize?: string };
}

export interface DovecotServer {
  host: '127.0.0.1';
  imapPort: number;
  imapsPort: number;
  pop3Port: number;
  pop3sPort: number;
  /** PEM file of the self-signed CA that signed the server certificate (SAN 127.0.0.1, localhost). */
  caFile: string;
  /** Directory holding config, certs, homes, sockets and logs. */
  dir: string;
  /** The generated dovecot.conf, for `doveadm -c`. */
  confFile: string;
  homeOf(user: string): string;
  /** Adds a user; works while running (Dovecot re-reads the passwd-file when it changes). */
  addUser(spec: UserSpec): Promise<void>;
  /** Stops Dovecot and waits for it; idempotent. Removes `dir` unless it was given or kept. */
  stop(): Promise<void>;
  /** Stops Dovecot (every session ends) and starts it again on the same ports, mail and config. */
  restart(): Promise<void>;
  /** Last lines of the Dovecot log, for failed tests. */
  logTail(lines?: number): string;
}

export interface StartOptions {
  users: UserSpec[];
  /** Use this directory (created if missing; nobody must be able to reach it, so not under /root)
   *  instead of a fresh temporary one; it is kept after stop(). */
  dir?: string;
  /** Keep the temporary directory after stop() (also: MAILFERRY_KEEP_DOVECOT=1). */
  keep?: boolean;
  /** TLS (default true). false: `ssl = no`, so STARTTLS/STLS are not advertised and there are no
   *  imaps/pop3s listeners; imapsPort and pop3sPort are then free ports nobody listens on. */
  ssl?: boolean;
  /** Hierarchy separator of the inbox namespace (default "/"). */
  separator?: string;
  /** Mailbox name (with `separator`) -> RFC 6154 flag, e.g. { 'Sent Items': '\\Sent' }: each becomes a
   *  `mailbox NAME { special_use = FLAG; auto = subscribe }` block of the inbox namespace, so it exists. */
  specialUse?: Record<string, string>;
  /** Also accept OAuth2 bearer tokens (SASL XOAUTH2 and OAUTHBEARER, RFC 7628), checked by POSTing
   *  them to `introspectionUrl` (RFC 7662 style: `{"active":true,"username":"alice"}`). Password
   *  logins keep working: the passwd-file passdb serves PLAIN/LOGIN, the oauth2 passdb the rest. */
  oauth2?: { introspectionUrl: string; mechanisms?: ('xoauth2' | 'oauthbearer')[] };
  /** Load the quota plugin (`quota = maildir`, no limit by default; UserSpec.quota sets limits). */
  quota?: boolean;
}

/**
 * The quota plugin, measured on 2.3.19: APPEND of a message over quota_max_mail_size is refused
 * with `NO [LIMIT] Mail size is larger than the maximum size allowed by server configuration`; one
 * that would exceed the storage rule with `NO [OVERQUOTA] Quota exceeded (mailbox for user is
 * full)`. (CREATE of a 300-character name: `NO [CANNOT] Mailbox name too long`.)
 */
const QUOTA_TEXT = `
mail_plugins = $mail_plugins quota
plugin {
  quota = maildir:User quota
}
`;

const INSTALL_HINT = 'apt-get install dovecot-imapd dovecot-pop3d';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findBinary(name: string, extra: string[]): string | undefined {
  const dirs = [...extra, ...(process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '')];
  for (const d of dirs) {
    const file = path.join(d, name);
    if (isExecutable(file)) return file;
  }
  return undefined;
}

/** Path of the dovecot binary, or undefined. MAILFERRY_DOVECOT overrides the search. */
export function findDovecot(): string | undefined {
  const forced = process.env.MAILFERRY_DOVECOT;
  if (forced !== undefined && forced !== '') return isExecutable(forced) ? forced : undefined;
  return findBinary('dovecot', ['/usr/sbin', '/usr/local/sbin']);
}

/** Path of doveadm, or undefined. */
export function findDoveadm(): string | undefined {
  return findBinary('doveadm', ['/usr/bin', '/usr/local/bin', '/usr/sbin']);
}

/**
 * For node:test's `skip` option. Dovecot missing: outside CI returns a skip reason (after a loud
 * warning on stderr); with CI=true throws, so CI never passes by skipping. Present: false.
 */
export function skipUnlessDovecot(): string | false {
  if (findDovecot() !== undefined) return false;
  const reason = `dovecot not found: ${INSTALL_HINT}`;
  if (process.env.CI === 'true') throw new Error(`CI=true but ${reason}`);
  process.stderr.write(`\n!!!!! SKIPPING DOVECOT TESTS: ${reason} !!!!!\n\n`);
  return reason;
}

interface Ids {
  uid: number;
  gid: number;
}

function lookupId(file: string, name: string, fallback: number): number {
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const fields = line.split(':');
      if (fields[0] === name && fields[2] !== undefined) return Number(fields[2]);
    }
  } catch {
    // fall through
  }
  return fallback;
}

/** uid of nobody and gid of nogroup: the owner Dovecot's mail processes run as here. */
export function mailIds(): Ids {
  return { uid: lookupId('/etc/passwd', 'nobody', 65534), gid: lookupId('/etc/group', 'nogroup', 65534) };
}

/** chown -R a tree to the mail user, so Dovecot (running as nobody) may read and write it. */
export async function chownToMailUser(root: string): Promise<void> {
  const { uid, gid } = mailIds();
  await fs.chown(root, uid, gid);
  const entries = await fs.readdir(root, { withFileTypes: true, recursive: true });
  for (const e of entries) {
    const full = path.join(e.parentPath, e.name);
    await fs.lchown(full, uid, gid);
  }
}

async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') throw new Error('could not get a free port');
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = mailferry test
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

export interface Certs {
  ca: string;
  cert: string;
  key: string;
}

export async function makeCerts(dir: string): Promise<Certs> {
  await fs.mkdir(dir, { recursive: true });
  const f = (name: string): string => path.join(dir, name);
  await fs.writeFile(f('openssl.cnf'), OPENSSL_CNF);
  const common = ['-config', f('openssl.cnf'), '-newkey', 'rsa:2048', '-nodes'];
  await run('openssl', ['req', '-x509', ...common, '-extensions', 'v3_ca', '-days', '1',
    '-subj', '/CN=mailferry test CA', '-keyout', f('ca.key'), '-out', f('ca.pem')]);
  await run('openssl', ['req', '-new', ...common, '-subj', '/CN=127.0.0.1',
    '-keyout', f('server.key'), '-out', f('server.csr')]);
  const serial = '0x' + Date.now().toString(16) + process.pid.toString(16);
  await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-set_serial', serial, '-days', '1', '-extfile', f('openssl.cnf'), '-extensions', 'v3_server',
    '-out', f('server.pem')]);
  await fs.chmod(f('server.key'), 0o600);
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

interface Ports {
  imap: number;
  imaps: number;
  pop3: number;
  pop3s: number;
}

interface Layout {
  dir: string;
  baseDir: string;
  conf: string;
  users: string;
  log: string;
  stderr: string;
}

/** The inbox namespace; the default (no options) is the one every other test relies on. */
function namespaceText(separator: string | undefined, specialUse: Record<string, string> | undefined): string {
  const sep = separator ?? '/';
  if (!/^[^\s"\\{}#]$/.test(sep)) throw new Error(`dovecot harness: bad separator ${JSON.stringify(sep)}`);
  const boxes = Object.entries(specialUse ?? {}).map(([name, flag]) => {
    if (/["\\\r\n{}]/.test(name) || name === '') throw new Error(`dovecot harness: bad mailbox name ${JSON.stringify(name)}`);
    if (!/^\\[A-Za-z]+$/.test(flag)) throw new Error(`dovecot harness: bad special_use ${JSON.stringify(flag)}`);
    return `
  mailbox "${name}" {
    special_use = ${flag}
    auto = subscribe
  }`;
  });
  return `namespace inbox {
  inbox = yes
  separator = ${sep}
  prefix =${boxes.join('')}
}`;
}

/**
 * Dovecot 2.3.19's oauth2 passdb, measured: with no tokeninfo_url it POSTs `token=<token>` to the
 * introspection URL and takes the user from `username`, refusing unless `active` is true. Each
 * passdb is limited to its mechanisms, so a bearer token is never tried as a password.
 */
function oauth2Text(conf: string, oauth2: StartOptions['oauth2']): { mechanisms: string; passdb: string; args?: string } {
  if (oauth2 === undefined) return { mechanisms: 'plain login', passdb: '' };
  if (!/^http:\/\/127\.0\.0\.1:\d+\/\S*$/.test(oauth2.introspectionUrl)) throw new Error('dovecot harness: oauth2 introspection URL must be http://127.0.0.1:PORT/...');
  const mechs = (oauth2.mechanisms ?? ['xoauth2', 'oauthbearer']).join(' ');
  return {
    mechanisms: `plain login ${mechs}`,
    passdb: `
passdb {
  driver = oauth2
  mechanisms = ${mechs}
  args = ${conf}
}`,
    args: `introspection_mode = post
introspection_url = ${oauth2.introspectionUrl}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
`,
  };
}

function configText(l: Layout, certs: Certs, ports: Ports, ids: Ids, ssl: boolean, ns: string, quota: boolean, oauth2: ReturnType<typeof oauth2Text>): string {
  const tls = ssl
    ? `ssl = yes
ssl_cert = <${certs.cert}
ssl_key = <${certs.key}`
    : 'ssl = no';
  const tlsListener = (name: string, port: number): string =>
    ssl
      ? `
  inet_listener ${name} {
    address = 127.0.0.1
    port = ${port}
    ssl = yes
  }`
      : '';
  return `# Generated by mailferry src/dev/dovecot.ts for tests: loopback only, plaintext passwords.
base_dir = ${l.baseDir}
state_dir = ${path.join(l.dir, 'state')}
instance_name = mailferry-${path.basename(l.dir)}
listen = 127.0.0.1
protocols = imap pop3
log_path = ${l.log}
auth_verbose = yes
login_greeting = mailferry test dovecot ready.

${tls}
disable_plaintext_auth = no
auth_mechanisms = ${oauth2.mechanisms}

mail_uid = ${ids.uid}
mail_gid = ${ids.gid}
mail_location = maildir:~/Maildir
mail_fsync = never
mail_max_userip_connections = 100
pop3_uidl_format = %08Xu%08Xv

passdb {
  driver = passwd-file${oauth2.passdb === '' ? '' : '\n  mechanisms = plain login'}
  args = scheme=PLAIN username_format=%u ${l.users}
}${oauth2.passdb}
userdb {
  driver = passwd-file
  args = username_format=%u ${l.users}
}

${ns}
${quota ? QUOTA_TEXT : ''}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${ports.imap}
  }${tlsListener('imaps', ports.imaps)}
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = ${ports.pop3}
  }${tlsListener('pop3s', ports.pop3s)}
}
`;
}

function passwdLine(spec: UserSpec, home: string): string {
  // passwd-file: ':' separates columns, except in the last (extra fields), which are split on spaces
  if (/[:\s]/.test(spec.name) || /[:\r\n]/.test(spec.password) || /\s/.test(spec.mailLocation ?? '')) {
    throw new Error(`dovecot harness: user ${JSON.stringify(spec.name)}: no ':' in name or password, no whitespace in name or mailLocation`);
  }
  if (spec.name === '' || spec.name.includes('/') || spec.name.startsWith('.')) {
    throw new Error(`dovecot harness: bad user name ${JSON.stringify(spec.name)}`);
  }
  const q = spec.quota ?? {};
  if (!/^\d*[kMG]?$/.test(q.storage ?? '') || !/^\d*[kMG]?$/.test(q.maxMailSize ?? '')) throw new Error('dovecot harness: quota sizes are digits with k, M or G');
  const extra = [
    ...(spec.mailLocation !== undefined ? [`userdb_mail=${spec.mailLocation}`] : []),
    ...(q.storage !== undefined ? [`userdb_quota_rule=*:storage=${q.storage}`] : []),
    ...(q.maxMailSize !== undefined ? [`userdb_quota_max_mail_size=${q.maxMailSize}`] : []),
  ].join(' ');
  // user:password:uid:gid:gecos:home:shell:extra_fields (uid/gid come from mail_uid/mail_gid)
  return `${spec.name}:{PLAIN}${spec.password}::::${home}::${extra}\n`;
}

function tailOf(text: string, lines: number): string {
  return text.split('\n').slice(-lines - 1).join('\n');
}

function readTail(file: string, lines: number): string {
  try {
    return tailOf(readFileSync(file, 'utf8'), lines);
  } catch {
    return '';
  }
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (await waitForExit(child, 10_000)) return;
  child.kill('SIGKILL');
  await waitForExit(child, 5_000);
}

/** Spawns dovecot and waits until every listened port accepts; rejects (after killing it) on failure. */
async function launch(binary: string, l: Layout, listened: number[]): Promise<ChildProcess> {
  const errFd = openSync(l.stderr, 'a');
  let child: ChildProcess;
  try {
    child = spawn(binary, ['-F', '-c', l.conf], { stdio: ['ignore', errFd, errFd], detached: false });
  } finally {
    closeSync(errFd);
  }
  child.unref();
  let spawnError: Error | undefined;
  child.once('error', (e: Error) => {
    spawnError = e;
  });
  const deadline = Date.now() + 20_000;
  const pending = new Set(listened);
  while (pending.size > 0) {
    if (spawnError !== undefined || child.exitCode !== null || child.signalCode !== null) {
      const why = spawnError !== undefined ? spawnError.message : `exit ${String(child.exitCode ?? child.signalCode)}`;
      throw new Error(`dovecot failed to start (${why}):\n${readTail(l.stderr, 20)}\n${readTail(l.log, 20)}`);
    }
    if (Date.now() > deadline) {
      await killChild(child);
      throw new Error(`dovecot did not open its ports in time:\n${readTail(l.log, 20)}`);
    }
    for (const p of [...pending]) if (await canConnect(p)) pending.delete(p);
    if (pending.size > 0) await sleep(50);
  }
  return child;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test that forgets stop() must not leave a Dovecot behind when node exits.
  process.on('exit', () => {
    for (const child of running) child.kill('SIGTERM');
  });
}

export async function startDovecot(opts: StartOptions): Promise<DovecotServer> {
  const binary = findDovecot();
  if (binary === undefined) throw new Error(`dovecot not found; install it: ${INSTALL_HINT}`);
  const ownDir = opts.dir === undefined;
  const dir = opts.dir !== undefined ? path.resolve(opts.dir) : await fs.mkdtemp(path.join(os.tmpdir(), 'mf-dovecot-'));
  await fs.mkdir(dir, { recursive: true });
  // Dovecot's unprivileged processes (dovecot, dovenull, nobody) must traverse it.
  await fs.chmod(dir, 0o755);
  // Unix socket paths are limited to ~107 bytes: keep base_dir short.
  let baseDir = path.join(dir, 'run');
  if (baseDir.length > 60) baseDir = await fs.mkdtemp('/tmp/mf-dc-run-');
  const l: Layout = {
    dir,
    baseDir,
    conf: path.join(dir, 'dovecot.conf'),
    users: path.join(dir, 'users'),
    log: path.join(dir, 'dovecot.log'),
    stderr: path.join(dir, 'dovecot.stderr'),
  };
  const ids = mailIds();
  const homes = path.join(dir, 'home');
  await fs.mkdir(homes, { recursive: true });
  await fs.mkdir(path.join(dir, 'state'), { recursive: true });
  await fs.chmod(homes, 0o755);
  const certs = await makeCerts(path.join(dir, 'tls'));

  const homeOf = (user: string): string => path.join(homes, user);
  const lines = new Map<string, string>();
  let stamp = 0;
  let started = false;
  const writeUsers = async (): Promise<void> => {
    const tmp = `${l.users}.tmp`;
    await fs.writeFile(tmp, [...lines.values()].join(''), { mode: 0o644 });
    await fs.chmod(tmp, 0o644);
    // Dovecot reloads the passwd-file when its mtime (seconds) or size changed: make sure one does.
    stamp = Math.max(stamp + 1, Math.floor(Date.now() / 1000));
    await fs.utimes(tmp, stamp, stamp);
    await fs.rename(tmp, l.users);
  };
  const addUser = async (spec: UserSpec): Promise<void> => {
    const home = homeOf(spec.name);
    const line = passwdLine(spec, home);
    await fs.mkdir(home, { recursive: true, mode: 0o700 });
    await fs.chown(home, ids.uid, ids.gid);
    lines.set(spec.name, line);
    await writeUsers();
    // Dovecot stats the passwd-file at most once per second (per auth ioloop second), so a lookup
    // in the second of our write may still see the old file: wait for the next second to begin.
    if (started) await sleep(1020 - (Date.now() % 1000));
  };
  for (const u of opts.users) await addUser(u);
  if (lines.size === 0) await writeUsers();

  let child: ChildProcess | undefined;
  let ports: Ports | undefined;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3 && child === undefined; attempt++) {
    const [imap, imaps, pop3, pop3s] = await freePorts(4);
    if (imap === undefined || imaps === undefined || pop3 === undefined || pop3s === undefined) throw new Error('no free ports');
    ports = { imap, imaps, pop3, pop3s };
    const ssl = opts.ssl !== false;
    const oauth2 = oauth2Text(path.join(dir, 'dovecot-oauth2.conf.ext'), opts.oauth2);
    if (oauth2.args !== undefined) await fs.writeFile(path.join(dir, 'dovecot-oauth2.conf.ext'), oauth2.args);
    const ns = namespaceText(opts.separator, opts.specialUse);
    await fs.writeFile(l.conf, configText(l, certs, ports, ids, ssl, ns, opts.quota === true, oauth2));
    try {
      child = await launch(binary, l, ssl ? [imap, imaps, pop3, pop3s] : [imap, pop3]);
    } catch (e: unknown) {
      lastError = e; // most likely a port taken between probing and binding: try new ones
    }
  }
  if (child === undefined || ports === undefined) throw lastError instanceof Error ? lastError : new Error(String(lastError));
  let proc = child;
  started = true;
  running.add(proc);
  installExitHook();
  const listened = opts.ssl !== false ? [ports.imap, ports.imaps, ports.pop3, ports.pop3s] : [ports.imap, ports.pop3];
  const restart = async (): Promise<void> => {
    await killChild(proc);
    running.delete(proc);
    proc = await launch(binary, l, listened);
    running.add(proc);
  };

  const keep = !ownDir || opts.keep === true || process.env.MAILFERRY_KEEP_DOVECOT === '1';
  let stopped: Promise<void> | undefined;
  let finalLog: string | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await killChild(proc);
      running.delete(proc);
      if (!keep) {
        finalLog = readTail(l.log, 200);
        await fs.rm(dir, { recursive: true, force: true });
      }
      if (baseDir !== path.join(dir, 'run')) await fs.rm(baseDir, { recursive: true, force: true });
    })();
    return stopped;
  };

  return {
    host: '127.0.0.1',
    imapPort: ports.imap,
    imapsPort: ports.imaps,
    pop3Port: ports.pop3,
    pop3sPort: ports.pop3s,
    caFile: certs.ca,
    dir,
    confFile: l.conf,
    homeOf,
    addUser,
    stop,
    restart,
    logTail: (n = 40) => (finalLog !== undefined ? tailOf(finalLog, n) : existsSync(l.log) ? readTail(l.log, n) : ''),
  };
}
