/**
 * Byte counts as people type them: `2500MB`, `1.5G`, `500k`, `64KiB`, `1048576`. K, M, G, T are
 * decimal (as providers publish their limits: Google's "2500 MB"), KiB, MiB, GiB, TiB binary.
 * Returns undefined for anything else.
 */
export function parseBytes(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*(?:([kmgt])(i?)b?|b)?$/i.exec(text.trim());
  if (m === null) return undefined;
  const unit = (m[2] ?? '').toLowerCase();
  const power = unit === '' ? 0 : 'kmgt'.indexOf(unit) + 1;
  const base = m[3] === '' || m[3] === undefined ? 1000 : 1024;
  const n = Number(m[1]) * base ** power;
  return Number.isFinite(n) ? Math.floor(n) : undefined;
}

/** `2500000000` -> `2500 MB` (decimal, as limits are published). */
export function formatBytes(n: number): string {
  if (n >= 1e6 && n % 1e6 === 0 && n < 1e10) return `${n / 1e6} MB`;
  for (const [unit, size] of [['GB', 1e9], ['MB', 1e6], ['kB', 1e3]] as const) {
    if (n >= size) return `${Number((n / size).toFixed(1))} ${unit}`;
  }
  return `${n} B`;
}
