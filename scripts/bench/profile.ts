/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and sums self time per function and per
 * area: mailferry's own code, imapflow, other packages, Node internals (by module), and V8's
 * pseudo-frames ((garbage collector), (program) = native code with no JS frame, (idle)).
 * Work on libuv's thread pool (fsync, file writes) does not show here: the main thread is idle then.
 */
import { readFile } from 'node:fs/promises';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  where: string;
  area: string;
  selfMs: number;
  percent: number;
}

export interface ProfileSummary {
  totalMs: number;
  byArea: { area: string; selfMs: number; percent: number }[];
  top: ProfileEntry[];
}

function areaOf(url: string, name: string): string {
  // Native functions: Node's C++ bindings (openFileHandle, fsync, writeBuffers, ...) and V8 builtins.
  if (url === '') return name.startsWith('(') ? name : 'native (bindings, builtins)';
  if (url.includes('/node_modules/')) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    return m?.[1] ?? 'node_modules';
  }
  if (url.startsWith('node:')) {
    const mod = url.slice(5).replace(/^internal\//, '');
    if (/^(tls|_tls|crypto)/.test(mod)) return 'node: tls/crypto';
    if (/^(fs|streams?\/|stream)/.test(mod)) return mod.startsWith('fs') ? 'node: fs' : 'node: streams';
    if (/^(net|stream_base|dns)/.test(mod)) return 'node: net';
    if (/^(buffer|util)/.test(mod)) return 'node: buffer/util';
    return 'node: other';
  }
  if (url.includes('/dist/src/')) return 'mailferry';
  return 'other';
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) return url.slice(nm + '/node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist !== -1) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

export async function summarizeProfile(file: string, topN = 25): Promise<ProfileSummary> {
  const p = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, { name: string; where: string; area: string; us: number }>();
  let totalUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i] ?? -1);
    // timeDeltas[i] is the time since the previous sample; charge it to the sample it ends in.
    const us = p.timeDeltas[i] ?? 0;
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName === '' ? '(anonymous)' : functionName;
    const where = url === '' ? '' : `${shortUrl(url)}:${lineNumber + 1}`;
    const key = `${name} ${where}`;
    const entry = selfUs.get(key) ?? { name, where, area: areaOf(url, name), us: 0 };
    entry.us += us;
    selfUs.set(key, entry);
    totalUs += us;
  }
  const areas = new Map<string, number>();
  for (const e of selfUs.values()) areas.set(e.area, (areas.get(e.area) ?? 0) + e.us);
  const pct = (us: number): number => Number(((100 * us) / Math.max(1, totalUs)).toFixed(1));
  return {
    totalMs: Math.round(totalUs / 1000),
    byArea: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, selfMs: Math.round(us / 1000), percent: pct(us) })),
    top: [...selfUs.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((e) => ({ name: e.name, where: e.where, area: e.area, selfMs: Math.round(e.us / 1000), percent: pct(e.us) })),
  };
}
