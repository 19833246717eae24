/** The Date: field of a header block (RFC 5322 3.6.1), unfolded; undefined when absent or unparseable. */
export function dateHeader(header: Buffer): Date | undefined {
  const text = header.toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  const m = /^date:[ \t]*(.+?)[ \t]*$/im.exec(text);
  if (m === null) return undefined;
  // Drop a trailing comment such as "(CET)": Date.parse does not read RFC 5322 comments.
  const d = new Date((m[1] as string).replace(/\s*\([^)]*\)\s*$/, ''));
  return Number.isNaN(d.getTime()) ? undefined : d;
}
