import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { loadBackupConfig } from '../../src/config/backup.js';
import { loadMigrateConfig, loadRestoreConfig } from '../../src/config/transfer.js';
import { MailferryError } from '../../src/domain/errors.js';
import { formatBytes, parseBytes } from '../../src/profiles/bytes.js';
import { endpointFor, findProfile, loadProfileFile, loadProfiles, PROFILES_DIR, profileForDomain, profileForHost } from '../../src/profiles/load.js';
import { FOLDER_ROLES, validateProfile } from '../../src/profiles/schema.js';

const REQUIRED = [
  'gmail', 'google-workspace', 'outlook', 'yahoo', 'aol', 'icloud', 'fastmail', 'zoho', 'gmx', 'web.de',
  'mailbox.org', 'posteo', 'yandex', 'proton-bridge', 'generic',
];

test('every profiles/*.json validates, is named after its file, and the required providers are there', async () => {
  const files = (await readdir(PROFILES_DIR)).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= REQUIRED.length);
  for (const f of files) {
    const p = loadProfileFile(join(PROFILES_DIR, f));
    assert.equal(`${p.name}.json`, basename(f), `${f}: name`);
    assert.ok(p.imap !== undefined || p.pop3 !== undefined, `${f}: a server`);
  }
  const names = loadProfiles().map((p) => p.name);
  for (const n of REQUIRED) assert.ok(names.includes(n), `profile ${n} missing`);
  // No two profiles claim the same domain.
  const seen = new Map<string, string>();
  for (const p of loadProfiles()) {
    for (const d of p.domains) {
      assert.equal(seen.get(d), undefined, `${d} claimed by ${seen.get(d)} and ${p.name}`);
      seen.set(d, p.name);
    }
  }
});

test('the published numbers: Gmail limits and folders, Microsoft OAuth2, Proton Bridge on localhost', () => {
  const gmail = findProfile('gmail');
  assert.deepEqual(gmail.limits, {
    connections: 15,
    downloadBytesPerDay: 2_500_000_000,
    uploadBytesPerDay: 500_000_000,
    pop3BytesPerDay: 1_250_000_000,
    maxAppendBytes: 35_000_000,
  });
  assert.equal(gmail.folders.roles.sent, '[Gmail]/Sent Mail');
  for (const f of ['[Gmail]/Important', '[Gmail]/Starred']) assert.ok(gmail.folders.skip.includes(f), f);
  // All Mail holds archived mail no other folder shows: skipping it is only safe in Gmail mode (issue 15).
  assert.ok(!gmail.folders.skip.some((f) => f.includes('All Mail')));
  assert.equal(gmail.auth.oauth2?.tokenUrl, 'https://oauth2.googleapis.com/token');
  assert.equal(gmail.auth.oauth2?.scope, 'https://mail.google.com/');
  const ms = findProfile('outlook');
  assert.equal(ms.limits.maxAppendBytes, 45_000_000);
  assert.equal(ms.auth.oauth2?.tokenUrl, 'https://login.microsoftonline.com/common/oauth2/v2.0/token');
  assert.match(ms.auth.oauth2?.scope ?? '', /IMAP\.AccessAsUser\.All .*offline_access/);
  const bridge = findProfile('proton-bridge');
  assert.deepEqual(bridge.imap, { host: '127.0.0.1', port: 1143, tls: 'starttls' });
  assert.deepEqual(bridge.smtp, { host: '127.0.0.1', port: 1025, tls: 'starttls' });
  assert.ok(bridge.notes.some((n) => /self-signed/.test(n)));
});

test('a broken profile is rejected with every problem listed, field by field', () => {
  const r = validateProfile({
    name: 'Bad Name',
    domains: ['ok.org', 'not a domain'],
    imap: { host: 'imap.example.org', port: 99999, tls: 'plain' },
    folders: { roles: { sent: '', outbox: 'Outbox' }, skip: 'All Mail' },
    limits: { connections: 0, downloadBytesPerDay: -1, perHour: 5 },
    auth: { methods: ['password', 'kerberos'], oauth2: { tokenUrl: 'http://x' } },
    colour: 'blue',
  });
  assert.ok('problems' in r);
  const expected = [
    /^colour: unknown field/,
    /^name: "Bad Name" is not valid/,
    /^description: must be a non-empty string/,
    /^domains\[1\]: "not a domain"/,
    /^imap\.port: must be an integer from 1 to 65535/,
    /^imap\.tls: must be "tls" or "starttls"/,
    /^folders\.roles\.outbox: unknown field/,
    /^folders\.roles\.sent: must be a non-empty string/,
    /^folders\.skip: must be an array/,
    /^limits\.perHour: unknown field/,
    /^limits\.connections: must be an integer from 1 to 64/,
    /^limits\.downloadBytesPerDay: must be an integer/,
    /^auth\.methods\[1\]: "kerberos" is not one of/,
    /^auth\.oauth2\.authUrl: must be a non-empty string/,
    /^auth\.oauth2\.tokenUrl: "http:\/\/x" is not valid/,
    /^auth\.oauth2\.scope: must be a non-empty string/,
    /^auth\.oauth2: given, but "oauth2" is not in auth\.methods/,
  ];
  for (const re of expected) assert.ok(r.problems.some((p) => re.test(p)), `missing ${re}: ${r.problems.join(' | ')}`);
  assert.equal(r.problems.length, expected.length, r.problems.join(' | '));
});

test('a broken profile file is a usage error naming the file and all its problems in one line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-prof-'));
  try {
    const file = join(dir, 'my.json');
    await writeFile(file, JSON.stringify({ name: 'my', description: 'x', domains: [], imap: { host: 'h', port: 0, tls: 'tls' }, auth: { methods: [] } }));
    assert.throws(() => findProfile(file), (e: unknown) => {
      assert.ok(e instanceof MailferryError && e.kind === 'usage');
      assert.match(e.message, /my\.json: imap\.port: .*; auth\.methods: must name at least one method/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    await writeFile(file, '{ "name": ');
    assert.throws(() => findProfile(file), /my\.json is not valid JSON/);
    assert.throws(() => findProfile('no-such-provider'), /no profile "no-such-provider" \(known: aol, .*gmail/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('domain lookup: exact and name.* entries, unknown domains get the generic profile with derived hosts', () => {
  const all = loadProfiles();
  const by = (d: string): string => profileForDomain(all, d).name;
  assert.equal(by('gmail.com'), 'gmail');
  assert.equal(by('GoogleMail.com'), 'gmail');
  assert.equal(by('hotmail.co.uk'), 'outlook');
  assert.equal(by('hotmail.com'), 'outlook');
  assert.equal(by('live.de'), 'outlook');
  assert.equal(by('outlook.com'), 'outlook');
  assert.equal(by('yahoo.fr'), 'yahoo');
  assert.equal(by('me.com'), 'icloud');
  assert.equal(by('web.de'), 'web.de');
  assert.equal(by('gmx.de'), 'gmx');
  assert.equal(by('proton.me'), 'proton-bridge');
  assert.equal(by('example.org'), 'generic');
  assert.equal(by('hotmailer.com'), 'generic');
  const generic = profileForDomain(all, 'example.org');
  assert.deepEqual(endpointFor(generic, 'imap', 'me@example.org'), { kind: 'imap', user: 'me@example.org', host: 'imap.example.org', port: 993, tls: 'tls' });
  assert.equal(endpointFor(generic, 'pop3', 'me@example.org').host, 'pop.example.org');
  assert.throws(() => endpointFor(findProfile('icloud'), 'pop3', 'me@icloud.com'), /icloud has no pop3 server/);
  assert.equal(profileForHost(all, 'IMAP.gmail.com', 993)?.name, 'gmail');
  assert.equal(profileForHost(all, 'pop.gmail.com', 995)?.name, 'gmail');
  assert.equal(profileForHost(all, 'imap.example.org', 993), undefined);
  assert.equal(profileForHost(all, '127.0.0.1', 1143)?.name, 'proton-bridge');
  // A test server on localhost is not Proton Bridge.
  assert.equal(profileForHost(all, '127.0.0.1', 10143), undefined);
});

const base = { to: ['maildir:/tmp/x'], passwordEnv: 'PW' };

test('backup config from --user: server, limits and skipped folders from the profile; flags override', () => {
  const gmail = loadBackupConfig({ ...base, user: 'me@gmail.com', connections: 20 });
  assert.deepEqual(gmail.from, { kind: 'imap', user: 'me@gmail.com', host: 'imap.gmail.com', port: 993, tls: 'tls' });
  assert.equal(gmail.limits.profiles[0], 'gmail');
  assert.equal(gmail.connections, 15);
  assert.ok(gmail.limits.notes.some((n) => /--connections 20 is more than gmail allows; using 15/.test(n)));
  assert.equal(gmail.limits.budgets[0]?.bytes, 2_500_000_000);
  assert.ok(gmail.exclude.includes('[Gmail]/Starred'));
  assert.ok(!gmail.exclude.includes('[Gmail]/All Mail'));

  const pop = loadBackupConfig({ ...base, user: 'me@gmail.com', protocol: 'pop3', maxBytesPerSecond: '2M' });
  assert.equal(pop.from.host, 'pop.gmail.com');
  assert.equal(pop.limits.budgets[0]?.bytes, 1_250_000_000);
  assert.equal(pop.limits.bytesPerSecond, 2_000_000);

  const all = loadBackupConfig({ ...base, user: 'me@gmail.com', allFolders: true, maxBytesPerDay: '0', exclude: ['Spam'] });
  assert.deepEqual(all.exclude, ['Spam']);
  assert.equal(all.limits.budgets[0]?.bytes, undefined);

  const byHost = loadBackupConfig({ ...base, from: 'imaps://me@gmail.com@imap.gmail.com' });
  assert.equal(byHost.limits.profiles[0], 'gmail');
  assert.equal(byHost.limits.budgets[0]?.bytes, 2_500_000_000);

  const local = loadBackupConfig({ ...base, from: 'imap://me@127.0.0.1:10143' });
  assert.equal(local.limits.profiles[0], undefined);
  assert.deepEqual(local.exclude, []);

  const plain = loadBackupConfig({ ...base, from: 'imaps://me@imap.example.org', maxBytesPerDay: '1.5G' });
  assert.equal(plain.limits.profiles[0], undefined);
  assert.equal(plain.limits.budgets[0]?.bytes, 1_500_000_000);
  assert.deepEqual(plain.limits.notes, []);

  const generic = loadBackupConfig({ ...base, user: 'me@example.org' });
  assert.equal(generic.from.host, 'imap.example.org');
  assert.ok(generic.limits.notes.some((n) => /no profile knows example\.org/.test(n)));
});

test('profile flag mistakes are reported together, before any I/O', () => {
  assert.throws(
    () => loadBackupConfig({ ...base, from: 'imaps://me@h', user: 'me@gmail.com', protocol: 'smtp', maxBytesPerDay: 'lots', maxBytesPerSecond: '10' }),
    (e: unknown) => {
      assert.ok(e instanceof MailferryError && e.kind === 'usage');
      for (const re of [/--protocol must be imap or pop3/, /give --from URL or --user ADDRESS, not both/, /--max-bytes-per-day needs a size/, /--max-bytes-per-second needs a size such as 500k or 2M \(at least 1KiB\), not "10"/]) {
        assert.match(e.message, re);
      }
      return true;
    },
  );
  assert.throws(() => loadBackupConfig({ ...base, profile: 'gmail' }), /--profile needs --user ADDRESS/);
  assert.throws(() => loadBackupConfig({ ...base, user: 'alice' }), /an e-mail address is needed/);
  assert.throws(() => loadBackupConfig({ ...base }), /--from is required .* or --user ADDRESS/);
});

test('restore and migrate: accounts by address, connection caps, download and upload budgets per account', () => {
  const restore = loadRestoreConfig({ from: 'maildir:/tmp/x', user: 'me@gmail.com', passwordEnv: 'PW' });
  assert.equal(restore.target.endpoint.host, 'imap.gmail.com');
  assert.deepEqual(restore.limits.budgets.map((b) => [b.kind, b.bytes, b.account.host]), [['upload', 500_000_000, 'imap.gmail.com']]);
  assert.equal(loadRestoreConfig({ from: 'maildir:/tmp/x', user: 'me@gmail.com', passwordEnv: 'PW', maxBytesPerDay: '0' }).limits.budgets.length, 0);

  const migrate = loadMigrateConfig({
    user: 'me@gmail.com', passwordEnv: 'A', connections: 20,
    targetUser: 'me@fastmail.com', targetPasswordEnv: 'B', targetConnections: 4,
  });
  assert.equal(migrate.source.endpoint.host, 'imap.gmail.com');
  assert.equal(migrate.source.connections, 15);
  assert.equal(migrate.target.endpoint.host, 'imap.fastmail.com');
  assert.ok(migrate.exclude.includes('[Gmail]/Important'));
  assert.deepEqual(migrate.limits.budgets.map((b) => [b.kind, b.bytes]), [['download', 2_500_000_000]]);
  assert.ok(migrate.limits.notes.some((n) => /--connections 20 is more than gmail allows/.test(n)));

  const intoGmail = loadMigrateConfig({
    from: 'imaps://me@imap.example.org', passwordEnv: 'A', targetUser: 'me@googlemail.com', targetPasswordEnv: 'B', maxBytesPerSecond: '1M',
  });
  assert.deepEqual(intoGmail.limits.budgets.map((b) => [b.kind, b.bytes]), [['upload', 500_000_000]]);
  assert.equal(intoGmail.limits.bytesPerSecond, 1_000_000);
  // The largest message is the target's: gmail's into gmail, none out of gmail into fastmail (no limit listed).
  assert.equal(intoGmail.limits.maxAppendBytes, 35_000_000);
  assert.equal(migrate.limits.maxAppendBytes, undefined);
  assert.equal(restore.limits.maxAppendBytes, 35_000_000, 'restore into gmail');
  assert.equal(restore.targetRoles.sent, '[Gmail]/Sent Mail', "the target profile's folder roles");
  assert.equal(migrate.targetRoles.junk, 'Spam', "fastmail's");
  assert.equal(migrate.sourceRoles.sent, '[Gmail]/Sent Mail');
  assert.throws(() => loadMigrateConfig({ user: 'me@gmail.com', passwordEnv: 'A', targetProfile: 'gmail', targetPasswordEnv: 'B' }), /--target-profile needs --target-user ADDRESS \(or --to URL\)/);
});

test('the OAuth2 refresh flow takes its token endpoint from the profile when --oauth2-token-url is not given', () => {
  const tokenUrl = (c: { auth: unknown }): unknown => (c.auth as { oauth2?: { tokenUrl?: string } }).oauth2?.tokenUrl;
  const gmail = loadBackupConfig({ to: ['maildir:/tmp/x'], user: 'me@gmail.com', oauth2: { clientId: 'id', refreshTokenEnv: 'RT' } });
  assert.equal(tokenUrl(gmail), 'https://oauth2.googleapis.com/token');
  const ms = loadMigrateConfig({
    user: 'me@gmail.com', passwordEnv: 'A', targetUser: 'me@outlook.com', targetOauth2: { clientId: 'id', refreshTokenFile: '/x' },
  });
  assert.equal(tokenUrl(ms.target), 'https://login.microsoftonline.com/common/oauth2/v2.0/token');
  // An explicit one wins; a provider without OAuth2 in its profile still needs the flag.
  const given = loadBackupConfig({ to: ['maildir:/tmp/x'], user: 'me@gmail.com', oauth2: { clientId: 'id', refreshTokenEnv: 'RT', tokenUrl: 'https://127.0.0.1/t' } });
  assert.equal(tokenUrl(given), 'https://127.0.0.1/t');
  assert.throws(() => loadBackupConfig({ to: ['maildir:/tmp/x'], user: 'me@aol.com', oauth2: { clientId: 'id', refreshTokenEnv: 'RT' } }), /--oauth2-token-url URL is required/);
});

test('parseBytes and formatBytes', () => {
  assert.equal(parseBytes('2500MB'), 2_500_000_000);
  assert.equal(parseBytes('1.5G'), 1_500_000_000);
  assert.equal(parseBytes('500k'), 500_000);
  assert.equal(parseBytes('64KiB'), 65_536);
  assert.equal(parseBytes('1048576'), 1_048_576);
  assert.equal(parseBytes('12 b'), 12);
  assert.equal(parseBytes('-1'), undefined);
  assert.equal(parseBytes('MB'), undefined);
  assert.equal(formatBytes(2_500_000_000), '2500 MB');
  assert.equal(formatBytes(1_250_000_000), '1250 MB');
  assert.equal(formatBytes(45_000), '45 kB');
});

test('profiles/README.md documents every field the validator accepts', async () => {
  const doc = await readFile(join(PROFILES_DIR, 'README.md'), 'utf8');
  const fields = ['name', 'description', 'domains', 'imap', 'pop3', 'smtp', 'host', 'port', 'tls', 'folders', 'roles', 'skip', 'limits',
    'connections', 'downloadBytesPerDay', 'uploadBytesPerDay', 'pop3BytesPerDay', 'maxAppendBytes', 'auth', 'methods', 'oauth2',
    'authUrl', 'tokenUrl', 'scope', 'notes', ...FOLDER_ROLES];
  for (const f of fields) assert.match(doc, new RegExp(`[\`.]${f}\``), `${f} not documented`);
});
