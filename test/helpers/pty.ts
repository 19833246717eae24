import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { CLI_BIN, REPO_ROOT } from './cli.js';
import { Screen } from './screen.js';

/**
 * The CLI under a pseudo-terminal of `columns` x 24 (python3's pty module, as mutt.ts uses it),
 * as a user at a terminal runs it: stdin, stdout and stderr are the terminal. Everything written
 * to it is recorded with the time it came, so a test replays it on a modelled screen (screen.ts)
 * and reads what was shown at each moment, not only what is left at the end.
 */
const PTY = `
import base64, fcntl, os, pty, select, struct, sys, termios, time
cols = int(sys.argv[1])
start = time.time()
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack('HHHH', 24, cols, 0, 0))
    os.environ['TERM'] = 'vt100'
    os.execvp(sys.argv[2], sys.argv[2:])
while True:
    r, _, _ = select.select([fd], [], [], 0.5)
    if not r:
        continue
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    print('%d %s' % ((time.time() - start) * 1000, base64.b64encode(data).decode()), flush=True)
print('exit %d' % os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
`;

export interface PtyRun {
  status: number | null;
  /** What the terminal was sent, in order, with the milliseconds since the start. */
  chunks: { ms: number; text: string }[];
}

/** One moment of a run: the screen's rows after what was sent up to `ms`. */
export interface Shot {
  ms: number;
  rows: string[];
}

export function runInPty(args: string[], env: Record<string, string>, opts: { columns?: number; timeoutMs?: number } = {}): Promise<PtyRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', PTY, String(opts.columns ?? 80), process.execPath, CLI_BIN, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.once('error', reject);
    child.once('close', () => {
      clearTimeout(timer);
      const decoder = new StringDecoder('utf8');
      const chunks: PtyRun['chunks'] = [];
      let status: number | null = null;
      for (const line of out.split('\n')) {
        const exit = /^exit (-?\d+)$/.exec(line);
        if (exit !== null) status = Number(exit[1]);
        const m = /^(\d+) (\S+)$/.exec(line);
        if (m !== null) chunks.push({ ms: Number(m[1]), text: decoder.write(Buffer.from(m[2] as string, 'base64')) });
      }
      resolve({ status, chunks });
    });
  });
}

/** The run replayed on a screen `columns` wide: the rows after each chunk. */
export function replay(run: PtyRun, columns = 80): Shot[] {
  const screen = new Screen(columns);
  return run.chunks.map((c) => {
    screen.write(c.text);
    return { ms: c.ms, rows: screen.text() };
  });
}
