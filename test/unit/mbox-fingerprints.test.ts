import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MailboxInfo } from '../../src/domain/message.js';
import { MboxSink } from '../../src/drivers/mbox/sink.js';
import { fingerprintKey, headerBlock, wireSizeOfLf } from '../../src/formats/fingerprint.js';
import { readMbox } from '../../src/formats/mbox-reader.js';
import { Checkpoint } from '../../src/state/checkpoint.js';
import { STATE_FILE } from '../../src/commands/archive.js';
import type { Fingerprint } from '../../src/sinks/sink.js';
import { nastyMailbox } from '../fixtures/nasty.js';

/**
 * The mbox sink's re-match fingerprints, now from one streaming pass (scanMbox and the header
 * blocks only), equal what the whole-message reader (readMbox) gives, message by message: with
 * our state (noEol known), and without it (the alternative key for a final LF that may be ours).
 */
const SOURCE = 'imap://test@127.0.0.1:143';
const INBOX: MailboxInfo = { path: 'INBOX', delimiter: '/', uidValidity: 7n };

/** The reference: each message read whole, as the sink did before it streamed. */
async function reference(file: string, noEol: ReadonlySet<number>, stateless: boolean): Promise<Fingerprint[]> {
  const out: Fingerprint[] = [];
  for await (const m of readMbox(file, noEol)) {
    const header = headerBlock(m.body);
    const key = fingerprintKey(header, wireSizeOfLf(m.body));
    const ref = String(m.offset);
    const unsure = stateless && m.body.length > 0 && m.body[m.body.length - 1] === 0x0a;
    const cut = m.body.subarray(0, m.body.length - 1);
    out.push(unsure ? { key, ref, alt: fingerprintKey(headerBlock(cut), wireSizeOfLf(cut)) } : { key, ref });
  }
  return out;
}

async function fingerprints(root: string, mailbox: MailboxInfo): Promise<Fingerprint[]> {
  const folder = await new MboxSink(root, await Checkpoint.load(join(root, STATE_FILE), SOURCE)).open(mailbox);
  assert.equal(folder.needsRematch, true);
  const out: Fingerprint[] = [];
  for await (const f of folder.fingerprints()) out.push(f);
  return out;
}

const edge = [
  'Subject: no body, no blank line\r\n',
  'Subject: header only\r\n\r\n',
  'Subject: bare\nlf\n\nbody\n',
  'Subject: cr\r\n\r\nends in a lone CR\r',
  'Subject: quoted\r\n\r\nFrom x\r\n>From y\r\n>>From z\r\n',
  '\r\n',
  '\n',
  'x',
  'Subject: no final newline\r\n\r\nlast',
].map((s) => Buffer.from(s, 'latin1'));

test('streamed re-match fingerprints equal the whole-message reference, with and without our state', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mf-mbox-fp-'));
  try {
    const messages = [...nastyMailbox({ bigMessage: false }).flatMap((f) => f.messages.map((m) => m.raw)), ...edge];
    const sink = new MboxSink(root, await Checkpoint.load(join(root, STATE_FILE), SOURCE));
    const folder = await sink.open(INBOX);
    const tx = await folder.begin();
    for (const [i, raw] of messages.entries()) await tx.write({ mailbox: INBOX, id: String(i + 1), size: raw.length, flags: new Set(['\\Seen']), internalDate: new Date(Date.UTC(2024, 0, 1)) }, raw);
    await tx.commit();
    await sink.close();
    const file = sink.fileOf(INBOX);
    const noEol = new Set((await Checkpoint.load(join(root, STATE_FILE), SOURCE)).folder('INBOX')?.noEol ?? []);
    assert.ok(noEol.size >= 3, 'messages without a final newline are in the file');
    // With our state, under another UIDVALIDITY (the re-match path).
    const withState = await fingerprints(root, { ...INBOX, uidValidity: 8n });
    assert.equal(withState.length, messages.length);
    assert.deepEqual(withState, await reference(file, noEol, false));
    // Without it.
    await rm(join(root, STATE_FILE));
    const without = await fingerprints(root, INBOX);
    assert.deepEqual(without, await reference(file, new Set(), true));
    assert.ok(without.some((f) => f.alt !== undefined));
    // A foreign file (no metadata lines, no state).
    await writeFile(file, Buffer.from('From a Mon Jan  1 00:00:00 2024\nSubject: a\n\nx\n\nFrom b Mon Jan  1 00:00:00 2024\nSubject: b\n>From q\n', 'latin1'));
    assert.deepEqual(await fingerprints(root, INBOX), await reference(file, new Set(), true));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a file another program rewrote (longer than recorded, not our torn tail past the end) is not cut: it is re-matched as one without our state', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mf-mbox-fp-'));
  try {
    const raws = ['Subject: one\r\n\r\nfirst\r\n', 'Subject: two\r\n\r\nno final newline', 'Subject: three\r\n\r\nthird\r\n'].map((s) => Buffer.from(s, 'latin1'));
    const sink = new MboxSink(root, await Checkpoint.load(join(root, STATE_FILE), SOURCE));
    const folder = await sink.open(INBOX);
    const tx = await folder.begin();
    for (const [i, raw] of raws.entries()) await tx.write({ mailbox: INBOX, id: String(i + 1), size: raw.length, flags: new Set(), internalDate: new Date(Date.UTC(2024, 0, 1)) }, raw);
    await tx.commit();
    await sink.close();
    const file = sink.fileOf(INBOX);
    // A MUA expunged the first message and another program put a longer one before the rest.
    const text = await readFile(file, 'latin1');
    const second = text.indexOf('\nFrom ') + 1;
    const rewritten = `From x Mon Jan  1 00:00:00 2024\nSubject: added by someone else\n\n${'a long line\n'.repeat(20)}\n${text.slice(second)}`;
    assert.ok(rewritten.length > text.length);
    await writeFile(file, rewritten, 'latin1');
    const again = await new MboxSink(root, await Checkpoint.load(join(root, STATE_FILE), SOURCE)).open(INBOX);
    assert.equal(again.needsRematch, true);
    assert.equal(await readFile(file, 'latin1'), rewritten, 'nothing cut');
    const fps: Fingerprint[] = [];
    for await (const f of again.fingerprints()) fps.push(f);
    assert.equal(fps.length, 3);
    // "two" is found by its key without the final LF (the state's noEol offset points elsewhere now).
    const two = fingerprintKey(Buffer.from('Subject: two\n\n'), raws[1]!.length);
    assert.ok(fps.some((f) => f.alt === two), JSON.stringify(fps));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
