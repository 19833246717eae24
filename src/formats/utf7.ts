/**
 * Modified UTF-7 (RFC 3501 5.1.3), the encoding of IMAP mailbox names, which Thunderbird also uses
 * for keyword (tag) names: printable US-ASCII stays as it is ("&" becomes "&-"), every other run
 * of characters is "&" + their UTF-16BE in base64 with "," for "/" and no padding + "-".
 */
export function encodeUtf7(text: string): string {
  let out = '';
  let pending = '';
  const flush = (): void => {
    if (pending === '') return;
    const utf16 = Buffer.alloc(pending.length * 2);
    for (let i = 0; i < pending.length; i++) utf16.writeUInt16BE(pending.charCodeAt(i), i * 2);
    out += `&${utf16.toString('base64').replace(/=+$/, '').replace(/\//g, ',')}-`;
    pending = '';
  };
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    if (code >= 0x20 && code <= 0x7e) {
      flush();
      out += ch === '&' ? '&-' : ch;
    } else pending += ch;
  }
  flush();
  return out;
}
