/**
 * The one redaction layer. Every secret read or received (passwords, OAuth2 tokens) is registered
 * here, and every output path passes its text through `redact`: the loggers (stderr, --log-file,
 * debug traces), the stdout summary and JSON lines (`writeStdout`), error texts (main.ts) and the
 * relay replies kept in the state. A secret is matched in each form it may take on the way out:
 *
 * - raw, and JSON-escaped (a `"` or `\` in a password becomes `\"`, `\\` in a JSON line or an
 *   IMAP quoted string), and URL-encoded (`%22`, `+` or `%20`);
 * - base64 inside a SASL blob (AUTH PLAIN `\0user\0pass`, XOAUTH2 `user=..\x01auth=Bearer TOKEN`):
 *   the blob's alignment is unknown, so for each of the three offsets the base64 of the secret's
 *   whole 3-byte groups is a fixed run of characters; the whole base64 word holding it is removed.
 *
 * Control characters in a line (a server's folder name with a newline) are escaped by
 * `escapeControl`, applied by the logger to every plain line, so no line can be forged.
 */
const plain = new Set<string>();
/** `plain`, longest first, so that a form holding another (JSON-escaped `\\` around raw `\`) goes whole. */
let longestFirst: string[] = [];
const base64Runs = new Set<string>();

/** Register a secret: it is replaced by "***" in every output. Shorter than 3 characters: ignored. */
export function registerSecret(secret: string): void {
  if (secret.length < 3 || plain.has(secret)) return;
  plain.add(secret);
  const json = JSON.stringify(secret).slice(1, -1);
  plain.add(json);
  plain.add(encodeURIComponent(secret));
  plain.add(new URLSearchParams({ s: secret }).toString().slice(2));
  const bytes = Buffer.from(secret, 'utf8');
  for (let j = 0; j < 3; j++) {
    const whole = Math.floor((bytes.length - j) / 3) * 3;
    // At least two groups (8 characters): shorter runs would match innocent base64 by chance.
    if (whole >= 6) base64Runs.add(bytes.subarray(j, j + whole).toString('base64'));
  }
  longestFirst = [...plain].sort((a, b) => b.length - a.length);
}

const BASE64_WORD = /[A-Za-z0-9+/]+={0,2}/g;

export function redact(text: string): string {
  if (plain.size === 0) return text;
  let out = text;
  for (const s of longestFirst) out = out.split(s).join('***');
  if (base64Runs.size > 0) {
    out = out.replace(BASE64_WORD, (word) => ([...base64Runs].some((r) => word.includes(r)) ? '***' : word));
  }
  return out;
}

/** Control characters (C0, DEL, C1) escaped as `\n`, `\r`, `\t` or `\xNN`: one line stays one line. */
export function escapeControl(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** A result line on stdout (the summary, JSON progress and plans), redacted. */
export function writeStdout(line: string): void {
  process.stdout.write(`${redact(line)}\n`);
}
