/** What the IMAP target's folder code (target-folder.ts), its flag updates (flags.ts) and its removal of deleted mail (expunge.ts) share. */
import type { ImapFlow } from 'imapflow';

/** UIDs per UID STORE / UID FETCH of flags. */
export const STORE_UIDS = 2000;

/** Checkpoint key of the target side of a folder; NUL cannot occur in a mailbox name. */
export function targetKey(sourcePath: string): string {
  return `\u0000target:${sourcePath}`;
}

/**
 * Leave the selected mailbox without expunging: CLOSE on a mailbox opened read-write removes every
 * message flagged \Deleted (RFC 3501 6.4.2), which on a target holding the source's \Deleted
 * messages would lose them. EXAMINE first (selecting closes the previous mailbox without expunge,
 * RFC 3501 6.3.1), then CLOSE the read-only mailbox.
 */
export async function deselect(client: ImapFlow): Promise<void> {
  const box = client.mailbox;
  if (box === false) return;
  if (box.readOnly !== true) await client.mailboxOpen(box.path, { readOnly: true });
  await client.mailboxClose();
}
