/**
 * The layout rules of src/drivers/README.md, checked on the sources: a protocol library is imported
 * only inside its driver folder, drivers never import each other, nothing below the commands
 * imports a command, the config loader or the pipeline, the shipped code never imports the
 * dev tooling (scripts/) or the tests, and no module imports one that imports it back.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// dist/test/unit/layout.test.js -> the repository root
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const src = join(root, 'src');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

interface Edge { from: string; spec: string; to?: string }

function imports(file: string): Edge[] {
  const text = readFileSync(file, 'utf8');
  const out: Edge[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
    const spec = m[1] as string;
    const from = relative(root, file);
    if (spec.startsWith('.')) out.push({ from, spec, to: relative(root, resolve(dirname(file), spec.replace(/\.js$/, '.ts'))) });
    else out.push({ from, spec });
  }
  return out;
}

const edges = tsFiles(src).flatMap(imports);
const LIBRARY_HOME: Record<string, string> = { imapflow: 'src/drivers/imap/', nodemailer: 'src/drivers/smtp/' };
const posix = (p: string): string => p.split(sep).join('/');

test('the source tree is where this test looks', () => {
  assert.ok(edges.length > 100, `only ${edges.length} imports found under ${src}`);
  assert.ok(edges.some((e) => e.spec === 'imapflow'), 'imapflow is imported somewhere');
});

test('a protocol library is imported only inside its driver folder', () => {
  const bad = edges.filter((e) => {
    const home = LIBRARY_HOME[e.spec.split('/')[0] as string];
    return home !== undefined && !posix(e.from).startsWith(home);
  });
  assert.deepEqual(bad.map((e) => `${e.from} imports ${e.spec}`), []);
});

test('drivers never import each other', () => {
  const driverOf = (p: string): string | undefined => /^src\/drivers\/([^/]+)\//.exec(posix(p))?.[1];
  const bad = edges.filter((e) => {
    if (e.to === undefined) return false;
    const a = driverOf(e.from);
    const b = driverOf(e.to);
    return a !== undefined && b !== undefined && a !== b;
  });
  assert.deepEqual(bad.map((e) => `${e.from} -> ${e.to}`), []);
});

test('drivers, sources, sinks, formats, state and domain import no command, loader or pipeline', () => {
  const low = /^src\/(drivers|sources|sinks|formats|state|domain)\//;
  const high = /^src\/(commands|config|pipeline|main\.ts|cli\.ts)/;
  const bad = edges.filter((e) => e.to !== undefined && low.test(posix(e.from)) && high.test(posix(e.to)));
  assert.deepEqual(bad.map((e) => `${e.from} -> ${e.to}`), []);
});

test('the shipped code imports neither the dev tooling nor the tests', () => {
  const bad = edges.filter((e) => e.to !== undefined && !posix(e.to).startsWith('src/'));
  assert.deepEqual(bad.map((e) => `${e.from} -> ${e.to}`), []);
});

/**
 * Import circles among src modules, found as strongly connected components (Tarjan) of the
 * relative imports. `typeOnly` edges (`import type`, `export type`) vanish at run time but still
 * tie the modules together for the reader, so they count too.
 */
function circles(runtimeOnly: boolean): string[][] {
  const graph = new Map<string, string[]>();
  for (const file of tsFiles(src)) {
    const text = readFileSync(file, 'utf8');
    const out: string[] = [];
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s+(type\s+)?[^'";]*?from\s*'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)) {
      if (runtimeOnly && m[1] !== undefined) continue;
      const spec = (m[2] ?? m[3]) as string;
      out.push(posix(relative(root, resolve(dirname(file), spec.replace(/\.js$/, '.ts')))));
    }
    graph.set(posix(relative(root, file)), out);
  }
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) !== index.get(v)) return;
    const group: string[] = [];
    for (let w = stack.pop(); w !== undefined; w = w === v ? undefined : stack.pop()) {
      onStack.delete(w);
      group.push(w);
    }
    if (group.length > 1) found.push(group.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

test('no import circle among src modules at run time', () => {
  assert.deepEqual(circles(true).map((c) => c.join(' <-> ')), []);
});

test('no import circle among src modules, type-only imports included', () => {
  assert.deepEqual(circles(false).map((c) => c.join(' <-> ')), []);
});

test('no two folders of src import each other: the folders stand in layers (main > commands > config > auth, profiles > ... > domain)', () => {
  // A folder is src/<name>/ (the drivers as one); a top-level file (main.ts, cli.ts, ...) stands alone.
  const folderOf = (p: string): string => {
    const parts = posix(p).split('/');
    return parts.length > 2 ? `${parts[0]}/${parts[1]}` : posix(p);
  };
  const pairs = new Set<string>();
  for (const e of edges) if (e.to !== undefined && folderOf(e.from) !== folderOf(e.to)) pairs.add(`${folderOf(e.from)} -> ${folderOf(e.to)}`);
  const both = [...pairs].filter((p) => {
    const [a, b] = p.split(' -> ');
    return pairs.has(`${b} -> ${a}`);
  });
  assert.deepEqual(both.map((p) => `${p} and back: ${edges.filter((e) => e.to !== undefined && `${folderOf(e.to)} -> ${folderOf(e.from)}` === p).map((e) => `${e.from} -> ${e.to}`).join(', ')}`), []);
});
