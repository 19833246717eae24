import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * mutt as a reader of our archives. mutt is a terminal program, so it runs under a pseudo-terminal
 * (python3's pty module) with no configuration (`-n -F /dev/null`), read-only (`-R`), driven by
 * `push`ed keys: for each search pattern (`~A` all, `~R` read, `~F` flagged, `~Q` replied), tag the
 * matching messages and pipe each one (`pipe_split`) to a small script that prints the message's
 * `X-Mailferry-Case` header (`<tag-prefix-cond>`: nothing at all when no message matches). What
 * comes back is what mutt itself parsed out of the mailbox.
 */
const run = promisify(execFile);

/** False when mutt is there; a reason to skip otherwise (never with CI=true: there it throws). */
export function skipUnlessMutt(): string | false {
  if (spawnSync('mutt', ['-v'], { stdio: 'ignore' }).status === 0) return false;
  const reason = 'mutt not found: apt-get install mutt';
  if (process.env['CI'] === 'true') throw new Error(`CI=true but ${reason}`);
  process.stderr.write(`\n!!!!! SKIPPING MUTT TESTS: ${reason} !!!!!\n\n`);
  return reason;
}

/** Runs argv under a pty, reads (and drops) the screen output, kills it after `timeoutS`. */
const PTY = `
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.environ['TERM'] = 'vt100'
    os.execvp(sys.argv[2], sys.argv[2:])
deadline = time.time() + float(sys.argv[1])
while True:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            if not os.read(fd, 65536):
                break
        except OSError:
            break
    if time.time() > deadline:
        os.kill(pid, 9)
        sys.exit('mutt did not finish (a prompt it stopped at?)')
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
`;

/** Prints "<label> <case>" for the message on stdin: its X-Mailferry-Case header, "-" when none. */
const CASE = `awk -v k="$1" 'NF == 0 { body = 1 } !body && /^X-Mailferry-Case: / { sub(/^X-Mailferry-Case: /, ""); sub(/\\r$/, ""); print k " " $0; n++ } END { if (!n) print k " -" }'\n`;

/** For each label, the X-Mailferry-Case values (sorted) of the messages mutt matches with its pattern. */
export async function muttCases(mailbox: string, patterns: Record<string, string>): Promise<Record<string, string[]>> {
  const dir = await mkdtemp(join(tmpdir(), 'mf-mutt-'));
  try {
    const out = join(dir, 'out');
    const script = join(dir, 'case.sh');
    await writeFile(script, CASE);
    await writeFile(out, '');
    const keys = Object.entries(patterns)
      .map(([label, pattern]) => `<untag-pattern>~A<enter><tag-pattern>${pattern}<enter><tag-prefix-cond><pipe-message>sh ${script} ${label} >> ${out}<enter><end-cond>`)
      .join('');
    await run('python3', ['-c', PTY, '30', 'mutt', '-n', '-F', '/dev/null', '-R', '-f', mailbox,
      '-e', 'set wait_key=no pipe_split=yes pipe_decode=no quit=yes', '-e', `push "${keys}<quit>"`], { env: { ...process.env, HOME: dir } });
    const got: Record<string, string[]> = Object.fromEntries(Object.keys(patterns).map((k) => [k, []]));
    for (const line of (await readFile(out, 'utf8')).split('\n')) {
      const sp = line.indexOf(' ');
      if (sp > 0) got[line.slice(0, sp)]?.push(line.slice(sp + 1));
    }
    for (const k of Object.keys(got)) got[k]?.sort();
    return got;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
