/**
 * Modified UTF-7 (RFC 3501 §5.1.3) back to Unicode: the mailbox names clients send to a server
 * without UTF8=ACCEPT, as the scripted peers read them (the encoder is src/formats/utf7.ts
 * encodeUtf7).
 */
export function fromMutf7(s: string): string {
  return s.replace(/&([^-]*)-/g, (_m, b64: string) => {
    if (b64 === '') return '&';
    const b = Buffer.from(b64.replace(/,/g, '/'), 'base64');
    let out = '';
    for (let i = 0; i + 1 < b.length; i += 2) out += String.fromCharCode(b.readUInt16BE(i));
    return out;
  });
}
