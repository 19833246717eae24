import { MailferryError } from '../domain/errors.js';

/** True when a password may be asked for: stdin and stderr are both a terminal. */
export function canPrompt(): boolean {
  return process.stdin.isTTY === true && process.stderr.isTTY === true;
}

/**
 * Ask for a password on the terminal: the prompt on stderr, the answer read from stdin in raw
 * mode, never echoed (not even as stars). Enter ends it; Backspace and Ctrl-U edit; Ctrl-C
 * interrupts (exit 130); an empty answer is a usage error.
 */
export async function promptPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!canPrompt() || typeof stdin.setRawMode !== 'function') {
    throw new MailferryError('usage', 'no password source given and no terminal to ask on');
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  const answer = await new Promise<string>((resolve, reject) => {
    let pw = '';
    const finish = (err?: MailferryError): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err === undefined) resolve(pw);
      else reject(err);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(new MailferryError('interrupted', 'interrupted at the password prompt'));
        if (ch === '\u007f' || ch === '\b') pw = [...pw].slice(0, -1).join('');
        else if (ch === '\u0015') pw = '';
        else if (ch >= ' ') pw += ch;
      }
    };
    stdin.on('data', onData);
  });
  if (answer === '') throw new MailferryError('usage', 'no password given at the prompt');
  return answer;
}
