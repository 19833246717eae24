import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI_BIN } from '../helpers/cli.js';

const run = promisify(execFile);

/**
 * The bin's #! line carries the memory settings (docs/performance.md): run as a program, through
 * a symlink as npm's bin link and npx do, the process has them; `node bin/mailferry.js` runs the
 * same without them. A preload (NODE_OPTIONS) reports what the started node got.
 */
test('run as a program (through a bin link), mailferry gets its memory flags; through node it still runs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-bin-'));
  const report = join(dir, 'seen.json');
  const probe = join(dir, 'probe.cjs');
  await writeFile(
    probe,
    `require('node:fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify({ execArgv: process.execArgv, arena: process.env.MALLOC_ARENA_MAX ?? null, mmap: process.env.MALLOC_MMAP_THRESHOLD_ ?? null }));\n`,
  );
  const link = join(dir, 'mailferry');
  await symlink(CLI_BIN, link);
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: `--require ${probe}` };
  delete env.MALLOC_ARENA_MAX;
  delete env.MALLOC_MMAP_THRESHOLD_;

  const direct = await run(link, ['--version'], { env });
  assert.match(direct.stdout, /^\d+\.\d+\.\d+/);
  const seen = JSON.parse(await readFile(report, 'utf8')) as { execArgv: string[]; arena: string | null; mmap: string | null };
  assert.ok(seen.execArgv.includes('--max-semi-space-size=1'), `execArgv: ${seen.execArgv.join(' ')}`);
  assert.ok(seen.execArgv.includes('--heap-growing-percent=30'), `execArgv: ${seen.execArgv.join(' ')}`);
  assert.equal(seen.arena, '2');
  assert.equal(seen.mmap, '262144');

  const viaNode = await run(process.execPath, [CLI_BIN, '--version'], { env });
  assert.equal(viaNode.stdout, direct.stdout);
  const plain = JSON.parse(await readFile(report, 'utf8')) as { execArgv: string[]; arena: string | null };
  assert.deepEqual(plain.execArgv, [], 'node bin/mailferry.js: no flags (documented)');
  assert.equal(plain.arena, null);
});
