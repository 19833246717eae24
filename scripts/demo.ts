/**
 * `npm run demo`: start a throwaway Dovecot on 127.0.0.1 with a generated sample mailbox, back it
 * up with mailferry into ./demo-archive (Maildir and mbox), and say where the archive is.
 * Installs Debian's dovecot-imapd/dovecot-pop3d when missing and running as root.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { rm } from 'node:fs/promises';
import { findDovecot, startDovecot } from './dev/dovecot.js';
import { seedMailbox, type SeedFolder } from './dev/seed.js';
import { nastyMailbox, smallMessages } from '../test/fixtures/nasty.js';

const PACKAGES = ['dovecot-imapd', 'dovecot-pop3d'];

function ensureDovecot(): void {
  if (findDovecot() !== undefined) return;
  if (process.getuid?.() !== 0) {
    process.stderr.write(`demo: Dovecot is not installed. Install it with:\n  sudo apt-get install -y ${PACKAGES.join(' ')}\n`);
    process.exit(1);
  }
  process.stderr.write(`demo: installing ${PACKAGES.join(' ')} (apt-get)...\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...PACKAGES], { stdio: 'inherit', env });
  if (r.status !== 0 || findDovecot() === undefined) {
    process.stderr.write('demo: could not install Dovecot\n');
    process.exit(1);
  }
}

function sample(): SeedFolder[] {
  const folders = nastyMailbox({ bigMessage: false });
  folders.push(
    { path: 'Newsletters', messages: smallMessages(200, 7) },
    { path: 'Work/Clients/Acme', messages: smallMessages(120, 8) },
    { path: 'Work/Clients/Globex', messages: smallMessages(80, 9) },
  );
  return folders;
}

async function main(): Promise<void> {
  ensureDovecot();
  const archive = resolve(process.argv[2] ?? 'demo-archive');
  const user = { name: 'demo', password: 'demo-password-not-secret' };
  const server = await startDovecot({ users: [user] });
  try {
    const folders = sample();
    await seedMailbox(server, user, folders);
    const count = folders.reduce((n, f) => n + f.messages.length, 0);
    process.stderr.write(`demo: Dovecot on 127.0.0.1:${server.imapsPort} (IMAPS) with ${count} messages in ${folders.length} folders\n`);
    await rm(archive, { recursive: true, force: true });
    const args = [
      resolve('bin/mailferry.js'),
      'backup',
      '--from', `imaps://${user.name}@127.0.0.1:${server.imapsPort}`,
      '--ca', server.caFile,
      '--password-env', 'MAILFERRY_DEMO_PASSWORD',
      '--to', `maildir:${archive}/maildir`,
      '--to', `mbox:${archive}/mbox`,
    ];
    process.stderr.write(`demo: mailferry ${args.slice(1).join(' ')}\n`);
    const r = spawnSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, MAILFERRY_DEMO_PASSWORD: user.password } });
    if (r.status !== 0) {
      process.stderr.write(`demo: backup exited with ${r.status}\n`);
      process.exitCode = r.status ?? 1;
      return;
    }
    process.stdout.write(
      [
        '',
        `Archive written to ${archive}:`,
        `  Maildir: ${archive}/maildir   (try: ls -a ${archive}/maildir; mutt -f ${archive}/maildir)`,
        `  mbox:    ${archive}/mbox      (try: python3 -c "import mailbox; print(len(mailbox.mbox('${archive}/mbox/INBOX')))")`,
        'Run `npm run demo` again to start over; the demo server is gone when it ends.',
        '',
      ].join('\n'),
    );
  } finally {
    await server.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
