/**
 * The benchmark mailbox: a realistic, reproducible (seeded) account.
 *
 * - Folders (up to 20) of uneven size: INBOX and Sent are the largest, then archives and lists.
 * - 97.5% of messages are 2-50 KB (log-uniform): plain text (70%), multipart/alternative text+HTML
 *   (20%) or multipart/mixed with a small base64 attachment (10%), with realistic headers
 *   (Received chain, DKIM-Signature, Message-ID, References).
 * - 2.5% carry a 100 KB - 5 MB base64 attachment (log-uniform).
 * - One message in 7,000 (at least one) is 20-50 MB, a base64 attachment.
 *
 * Everything comes from the mulberry32 PRNG of the test fixtures: the same seed and message count
 * give the same bytes. Attachment bytes are cut from one pseudo-random pool (8 MB, base64 encoded
 * once) at seeded offsets, so generating 1 GB is cheap; Dovecot stores each copy separately.
 * Folders are generated one at a time (see `generateFolder`) so the whole mailbox is never in memory.
 */
import type { SeedFolder, SeedMessage } from '../dev/seed.js';
import { prng, randomBytes } from '../../test/fixtures/nasty.js';

export interface MailboxSpec {
  messages: number;
  seed: number;
  /** folders (default: folderCount(messages)); the WAN run spreads 2,000 messages over 16 */
  folders?: number;
}

export interface FolderPlan {
  path: string;
  count: number;
  /** Seed of this folder's generator. */
  seed: number;
  /** Indexes (within the folder) of the 20-50 MB messages. */
  huge: number[];
}

/** Folder names in order of importance; a small mailbox uses the first few. No '.' (Maildir++). */
const FOLDERS: { path: string; weight: number }[] = [
  { path: 'INBOX', weight: 3 },
  { path: 'Sent', weight: 2 },
  { path: 'Archive/2023', weight: 1.5 },
  { path: 'Lists/node-dev', weight: 1.5 },
  { path: 'Work/Projects/Apollo', weight: 1 },
  { path: 'Archive/2022', weight: 1.5 },
  { path: 'Lists/debian-devel', weight: 1.2 },
  { path: 'Work/Clients/Acme', weight: 0.8 },
  { path: 'Archive/2021', weight: 1.2 },
  { path: 'Receipts', weight: 0.5 },
  { path: 'Work/Projects/Borealis', weight: 0.8 },
  { path: 'Lists/ietf-imap', weight: 0.8 },
  { path: 'Archive/2020', weight: 1 },
  { path: 'Work/Clients/Globex', weight: 0.6 },
  { path: 'Personal/Family', weight: 0.5 },
  { path: 'Archive/2019', weight: 0.8 },
  { path: 'Work/Reports', weight: 0.5 },
  { path: 'Personal/Travel', weight: 0.4 },
  { path: 'Drafts', weight: 0.1 },
  { path: 'Archive/2024', weight: 1 },
];

/** 4 folders for 2,000 messages, 20 for 20,000. */
export function folderCount(messages: number): number {
  return Math.min(FOLDERS.length, Math.max(4, Math.round(messages / 1000)));
}

export function planMailbox(spec: MailboxSpec): FolderPlan[] {
  const chosen = FOLDERS.slice(0, Math.min(FOLDERS.length, spec.folders ?? folderCount(spec.messages)));
  const weight = chosen.reduce((n, f) => n + f.weight, 0);
  const counts = chosen.map((f) => Math.floor((spec.messages * f.weight) / weight));
  // Hand out the rounding remainder from the first folder on.
  for (let i = 0, left = spec.messages - counts.reduce((n, c) => n + c, 0); left > 0; i = (i + 1) % counts.length, left--) {
    counts[i] = (counts[i] ?? 0) + 1;
  }
  const next = prng(spec.seed * 7919 + 17);
  const plans: FolderPlan[] = chosen.map((f, i) => ({ path: f.path, count: counts[i] ?? 0, seed: (spec.seed * 1000 + i) >>> 0, huge: [] }));
  const hugeCount = Math.max(1, Math.round(spec.messages / 7000));
  for (let h = 0; h < hugeCount; h++) {
    const plan = plans[next() % plans.length];
    if (plan === undefined || plan.count === 0) continue;
    plan.huge.push(next() % plan.count);
  }
  return plans;
}

const FIRST = ['Anna', 'Ben', 'Chloé', 'David', 'Eva', 'Farid', 'Greta', 'Hiro', 'Ines', 'Jonas', 'Kofi', 'Lena', 'Mateo', 'Nora'];
const LAST = ['Meyer', 'Schmidt', 'Nguyen', 'Rossi', 'García', 'Kowalski', 'Tanaka', 'Olsen', 'Dubois', 'Okafor'];
const DOMAINS = ['example.com', 'example.org', 'example.net', 'mail.example.de', 'lists.example.io'];
const WORDS = ('the a of to and in is for on that with as this we will be are it at from by our meeting report invoice ' +
  'project budget schedule review draft update question answer plan release server backup weekly notes lunch ' +
  'travel contract offer please thanks regards attached see below let me know if you have any questions about ' +
  'deadline customer feedback issue fixed merged branch deploy tomorrow friday quarter numbers figures slides')
  .split(' ');

function pick<T>(next: () => number, list: readonly T[]): T {
  const v = list[next() % list.length];
  if (v === undefined) throw new Error('empty list');
  return v;
}

/** log-uniform integer in [lo, hi] */
function logUniform(next: () => number, lo: number, hi: number): number {
  const u = next() / 0x1_0000_0000;
  return Math.round(lo * Math.exp(u * Math.log(hi / lo)));
}

const crlf = (lines: string[]): string => lines.map((l) => l + '\r\n').join('');

/** Text of about `bytes` bytes in lines of at most 76 characters, CRLF, paragraphs. */
function text(next: () => number, bytes: number): string {
  const lines: string[] = [];
  let size = 0;
  while (size < bytes) {
    let line = '';
    const width = 50 + (next() % 27);
    while (line.length < width) line += (line === '' ? '' : ' ') + pick(next, WORDS);
    if (next() % 9 === 0) line += '.';
    lines.push(line);
    size += line.length + 2;
    if (next() % 6 === 0) {
      lines.push('');
      size += 2;
    }
  }
  return crlf(lines);
}

function html(next: () => number, bytes: number): string {
  const paras: string[] = ['<html><body>'];
  let size = 0;
  while (size < bytes) {
    const p = `<p>${text(next, 200 + (next() % 400)).replace(/\r\n/g, ' ')}</p>`;
    paras.push(p);
    size += p.length + 2;
  }
  paras.push('</body></html>');
  return crlf(paras);
}

const POOL_LINE = 78; // 76 base64 characters + CRLF
let pool: Buffer | undefined;

/** 8 MB of pseudo-random bytes as base64 lines (~10.8 MB), made once. */
function base64Pool(): Buffer {
  if (pool === undefined) {
    const b64 = randomBytes(8 << 20, 0x6d61696c).toString('base64');
    const lines: string[] = [];
    for (let i = 0; i + 76 <= b64.length; i += 76) lines.push(b64.slice(i, i + 76));
    pool = Buffer.from(crlf(lines), 'ascii');
  }
  return pool;
}

/** About `bytes` bytes of base64 lines, starting at a seeded line of the pool (wrapping around). */
function base64Body(next: () => number, bytes: number): Buffer {
  const p = base64Pool();
  const lines = Math.max(1, Math.ceil(bytes / POOL_LINE));
  const poolLines = p.length / POOL_LINE;
  const parts: Buffer[] = [];
  let line = next() % poolLines;
  for (let left = lines; left > 0;) {
    const take = Math.min(left, poolLines - line);
    parts.push(p.subarray(line * POOL_LINE, (line + take) * POOL_LINE));
    left -= take;
    line = 0;
  }
  return Buffer.concat(parts);
}

const START = Date.UTC(2015, 0, 1) / 1000;
const SPAN = 10 * 365 * 86400;
const EXTENSIONS = ['pdf', 'jpg', 'png', 'zip', 'docx', 'xlsx'];

interface Person {
  name: string;
  addr: string;
}

function person(next: () => number): Person {
  const name = `${pick(next, FIRST)} ${pick(next, LAST)}`;
  const local = name.toLowerCase().normalize('NFD').replace(/[^a-z ]/g, '').replace(' ', '.');
  return { name, addr: `${local}@${pick(next, DOMAINS)}` };
}

function rfc5322(d: Date): string {
  // Always +0000: the internal date is the same instant.
  return d.toUTCString().replace('GMT', '+0000');
}

/** One message; `kind` chooses the size class. */
function message(next: () => number, id: string, kind: 'regular' | 'attachment' | 'huge'): SeedMessage {
  const from = person(next);
  const to = person(next);
  const date = new Date((START + (next() % SPAN)) * 1000);
  const subject = Array.from({ length: 3 + (next() % 6) }, () => pick(next, WORDS)).join(' ');
  const received = Array.from({ length: 2 + (next() % 4) }, (_, i) =>
    `Received: from mx${i}.${pick(next, DOMAINS)} (mx${i}.${pick(next, DOMAINS)} [192.0.2.${next() % 255}])\r\n` +
    `\tby mail.example.org (Postfix) with ESMTPS id ${(next() >>> 4).toString(16).toUpperCase()}\r\n` +
    `\tfor <${to.addr}>; ${rfc5322(date)}`);
  const headers = [
    ...received,
    `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=${from.addr.split('@')[1] ?? ''}; s=s1;\r\n` +
      `\tbh=${base64Body(next, 60).subarray(0, 44).toString('ascii')};\r\n` +
      `\tb=${base64Body(next, 400).toString('ascii').replace(/\r\n/g, '\r\n\t').trimEnd()}`,
    `From: ${from.name} <${from.addr}>`,
    `To: ${to.name} <${to.addr}>`,
    ...(next() % 4 === 0 ? [`Cc: ${person(next).addr}, ${person(next).addr}`] : []),
    `Subject: ${next() % 3 === 0 ? 'Re: ' : ''}${subject}`,
    `Date: ${rfc5322(date)}`,
    `Message-ID: <${id}@bench.mailferry.test>`,
    'MIME-Version: 1.0',
  ];
  let body: Buffer;
  const boundary = `=_bench_${(next() >>> 0).toString(36)}`;
  const attach = (bytes: number): Buffer => {
    const name = `file-${next() % 10000}.${pick(next, EXTENSIONS)}`;
    const intro = text(next, 200 + (next() % 1500));
    return Buffer.concat([
      Buffer.from(crlf([
        `--${boundary}`, 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '',
      ]) + intro + crlf([
        `--${boundary}`, `Content-Type: application/octet-stream; name="${name}"`,
        `Content-Disposition: attachment; filename="${name}"`, 'Content-Transfer-Encoding: base64', '',
      ]), 'utf8'),
      base64Body(next, bytes),
      Buffer.from(crlf([`--${boundary}--`]), 'ascii'),
    ]);
  };
  if (kind === 'huge') {
    headers.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
    body = attach(20_000_000 + (next() % 30_000_001));
  } else if (kind === 'attachment') {
    headers.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
    body = attach(logUniform(next, 100_000, 5_000_000));
  } else {
    const size = logUniform(next, 2_000, 50_000);
    const bodySize = Math.max(200, size - 1500); // the headers above are ~1.5 KB
    const style = next() % 10;
    if (style < 7) {
      headers.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit');
      body = Buffer.from(text(next, bodySize), 'utf8');
    } else if (style < 9) {
      headers.push(`Content-Type: multipart/alternative; boundary="${boundary}"`);
      body = Buffer.from(
        crlf([`--${boundary}`, 'Content-Type: text/plain; charset=utf-8', '']) + text(next, bodySize * 0.4) +
        crlf([`--${boundary}`, 'Content-Type: text/html; charset=utf-8', '']) + html(next, bodySize * 0.6) +
        crlf([`--${boundary}--`]),
        'utf8',
      );
    } else {
      headers.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
      body = attach(Math.max(500, bodySize - 1000));
    }
  }
  const flags: string[] = [];
  if (next() % 10 < 7) flags.push('\\Seen');
  if (next() % 20 === 0) flags.push('\\Flagged');
  if (next() % 20 === 0) flags.push('\\Answered');
  return { raw: Buffer.concat([Buffer.from(headers.join('\r\n') + '\r\n\r\n', 'utf8'), body]), flags, date };
}

/** The messages of one folder, in UID order. */
export function generateFolder(plan: FolderPlan): SeedFolder {
  const next = prng(plan.seed);
  const huge = new Set(plan.huge);
  const messages: SeedMessage[] = [];
  for (let i = 0; i < plan.count; i++) {
    const kind = huge.has(i) ? 'huge' : next() % 1000 < 25 ? 'attachment' : 'regular';
    messages.push(message(next, `b${plan.seed}-${i}`, kind));
  }
  return { path: plan.path, messages };
}
