/**
 * node:test glue for the Dovecot harness: one server per test file (or per describe block).
 *
 *   const dc = withDovecot({ nasty: true });
 *   test('x', { skip: dc.skip }, async () => { const s = dc.server; ... });
 */
import { readFileSync } from 'node:fs';
import { after, before } from 'node:test';
import { ImapFlow } from '../../src/drivers/imap/imapflow.js';
import { skipUnlessDovecot, startDovecot, type DovecotServer, type StartOptions, type UserSpec } from '../../scripts/dev/dovecot.js';
import { seedMailbox, type SeedFolder } from '../../scripts/dev/seed.js';
import { nastyMailbox } from '../fixtures/nasty.js';

export interface Account {
  name: string;
  password: string;
}

export const alice: Account = { name: 'alice', password: 'alice-secret' };

export interface DovecotHandle {
  /** pass as `skip` to test()/describe(): a reason when Dovecot is missing (outside CI), else false */
  skip: string | false;
  /** the running server; throws when read before `before` ran or when skipped */
  readonly server: DovecotServer;
  alice: Account;
}

export interface WithDovecotOptions {
  /** seed alice with nastyMailbox() (default false) */
  nasty?: boolean | { bigMessage?: boolean };
  /** more folders for alice */
  seed?: SeedFolder[];
  /** more users besides alice */
  users?: UserSpec[];
  /** namespace options for the server (default: "/" separator, no special-use folders) */
  dovecot?: Pick<StartOptions, 'separator' | 'specialUse' | 'quota'>;
}

/** Registers before/after hooks in the current file or suite that start and stop one Dovecot. */
export function withDovecot(opts: WithDovecotOptions = {}): DovecotHandle {
  const skip = skipUnlessDovecot();
  let server: DovecotServer | undefined;
  before(async () => {
    if (skip !== false) return;
    server = await startDovecot({ ...opts.dovecot, users: [{ ...alice }, ...(opts.users ?? [])] });
    const folders: SeedFolder[] = [];
    if (opts.nasty !== undefined && opts.nasty !== false) folders.push(...nastyMailbox(opts.nasty === true ? {} : opts.nasty));
    folders.push(...(opts.seed ?? []));
    if (folders.length > 0) await seedMailbox(server, alice, folders);
  });
  after(async () => {
    if (server === undefined) return;
    if (process.env.MAILFERRY_DOVECOT_LOG === '1') process.stderr.write(`dovecot log:\n${server.logTail(200)}\n`);
    await server.stop();
  });
  return {
    skip,
    alice,
    get server(): DovecotServer {
      if (server === undefined) throw new Error('Dovecot is not running (skipped, or read before the before() hook)');
      return server;
    },
  };
}

export interface FetchedMessage {
  uid: number;
  flags: Set<string>;
  internalDate: Date;
  raw: Buffer;
}

export interface ConnectOptions {
  /** 'plain' (default), 'starttls' on imapPort, 'tls' on imapsPort; TLS verifies against caFile */
  security?: 'plain' | 'starttls' | 'tls';
}

export async function connect(server: DovecotServer, user: Account, opts: ConnectOptions = {}): Promise<ImapFlow> {
  const security = opts.security ?? 'plain';
  const c = new ImapFlow({
    host: server.host,
    port: security === 'tls' ? server.imapsPort : server.imapPort,
    secure: security === 'tls',
    doSTARTTLS: security === 'starttls',
    tls: security === 'plain' ? {} : { ca: readFileSync(server.caFile), rejectUnauthorized: true },
    auth: { user: user.name, pass: user.password },
    logger: false,
    disableAutoIdle: true,
  });
  await c.connect();
  return c;
}

/** Every message of a folder, by UID, with BODY.PEEK[] as raw. */
export async function fetchAll(server: DovecotServer, user: Account, folder: string): Promise<FetchedMessage[]> {
  const c = await connect(server, user);
  try {
    const box = await c.mailboxOpen(folder, { readOnly: true });
    if (box.exists === 0) return [];
    const out: FetchedMessage[] = [];
    for await (const m of c.fetch('1:*', { uid: true, flags: true, internalDate: true, source: true })) {
      if (m.source === undefined || m.internalDate === undefined) throw new Error(`FETCH of ${folder} UID ${m.uid} incomplete`);
      out.push({ uid: m.uid, flags: m.flags ?? new Set(), internalDate: new Date(m.internalDate), raw: m.source });
    }
    return out.sort((a, b) => a.uid - b.uid);
  } finally {
    await c.logout();
  }
}
