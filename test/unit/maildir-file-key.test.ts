import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileKey } from '../../src/drivers/maildir/file-key.js';
import { fingerprintKey, headerBlock, wireSizeOfLf } from '../../src/formats/fingerprint.js';

/**
 * The Maildir sink's streamed content key (drivers/maildir/file-key.ts) is the key of the whole
 * file read at once (what a re-match compares against the source's), wherever the blank line
 * falls against the 64 KiB read chunks, in LF or CRLF, with no blank line at all, or empty.
 */
test('fileKey streamed equals the key of the file read whole', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-file-key-'));
  try {
    const chunk = 64 * 1024;
    const header = (len: number): string => `Subject: x\n${'X-Pad: '.padEnd(Math.max(0, len - 12), 'p')}\n`;
    const cases: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['small', Buffer.from('Subject: a\n\nbody\n')],
      ['no blank line', Buffer.from(`Subject: a\n${'line\n'.repeat(30_000)}`)],
      ['crlf before lflf', Buffer.from('Subject: a\r\n\r\nbody\n\nmore\n')],
      ['body with CR LF and lone LF', Buffer.from(`Subject: a\n\n${'l\r\nm\n'.repeat(40_000)}`)],
    ];
    // The blank line at every position around the first chunk boundary.
    for (let shift = -4; shift <= 3; shift++) {
      const h = header(chunk + shift);
      cases.push([`LF blank line at ${shift}`, Buffer.from(`${h}\n${'b'.repeat(100)}\n`)]);
      cases.push([`CRLF blank line at ${shift}`, Buffer.from(`${h.replace(/\n/g, '\r\n')}\r\n${'b'.repeat(100)}\r\n`)]);
    }
    for (const [name, body] of cases) {
      const file = join(dir, 'm');
      await writeFile(file, body);
      const whole = fingerprintKey(headerBlock(body), wireSizeOfLf(body));
      assert.equal(await fileKey(file), whole, name);
      assert.equal(await fileKey(file, wireSizeOfLf(body)), whole, `${name}, wire size given`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
