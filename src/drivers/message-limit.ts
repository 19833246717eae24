/**
 * How many bytes a server may send for one message, shared by the POP3 and IMAP drivers: its
 * announced size (POP3 LIST, IMAP RFC822.SIZE) plus a small tolerance (a server's size may be an
 * estimate: an eighth more, plus 64 KiB), never more than `max` (`--max-message-size`, default
 * MAX_MESSAGE_SIZE); without an announced size, `max`. More is that message's fault: it is
 * skipped and reported (exit 3), the rest goes on.
 */
export const MAX_MESSAGE_SIZE = 1 << 30;

export function messageLimit(size: number | undefined, max = MAX_MESSAGE_SIZE): number {
  return size === undefined ? max : Math.min(max, size + Math.ceil(size / 8) + (64 << 10));
}
