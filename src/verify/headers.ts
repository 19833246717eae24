/**
 * One header field of a header block (LF form), unfolded and trimmed, for naming a message in a
 * difference (Message-ID, Subject); the first occurrence; undefined when absent. Not decoded: an
 * encoded word (RFC 2047) is shown as written.
 */
export function headerField(header: Buffer, name: string): string | undefined {
  const text = header.toString('latin1');
  const lines = text.split('\n');
  const lower = `${name.toLowerCase()}:`;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (!line.toLowerCase().startsWith(lower)) continue;
    let value = line.slice(lower.length);
    for (let j = i + 1; j < lines.length && /^[ \t]/.test(lines[j] ?? ''); j++) value += ` ${(lines[j] ?? '').trim()}`;
    const v = value.replace(/\r$/, '').trim();
    return v === '' ? undefined : Buffer.from(v, 'latin1').toString('utf8');
  }
  return undefined;
}
