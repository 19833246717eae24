import { displayWidth } from '../../src/progress.js';

/**
 * A terminal screen of `width` columns, enough of a VT100 to read what the progress display leaves
 * behind: printable text (wide characters take two columns, and a line longer than the width wraps
 * onto the next row, as a terminal with auto-wrap does), CR, LF (ONLCR: back to column 0), and
 * ESC [ K (erase to the end of the line). Anything else is a test failure.
 */
export class Screen {
  readonly rows: string[][] = [[]];
  private row = 0;
  private col = 0;
  constructor(readonly width: number) {}

  write(data: string): void {
    for (let i = 0; i < data.length; ) {
      if (data.startsWith('\x1b[K', i)) {
        this.line().length = Math.min(this.line().length, this.col);
        i += 3;
        continue;
      }
      const ch = String.fromCodePoint(data.codePointAt(i) ?? 0);
      i += ch.length;
      if (ch === '\r') this.col = 0;
      else if (ch === '\n') this.newline();
      else if (/\p{Cc}/u.test(ch)) throw new Error(`control character U+${(ch.codePointAt(0) ?? 0).toString(16)} written to the terminal`);
      else {
        const w = displayWidth(ch);
        if (this.col + w > this.width) this.newline();
        const line = this.line();
        while (line.length < this.col) line.push(' ');
        line[this.col] = ch;
        for (let k = 1; k < w; k++) line[this.col + k] = '';
        this.col += w;
      }
    }
  }

  /** The screen's text, one string per row, trailing blanks removed. */
  text(): string[] {
    return this.rows.map((r) => r.join('').trimEnd());
  }

  private line(): string[] {
    return this.rows[this.row] as string[];
  }

  private newline(): void {
    this.row++;
    this.col = 0;
    if (this.rows.length <= this.row) this.rows.push([]);
  }
}
