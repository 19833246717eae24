import { randomBytes } from 'node:crypto';

/**
 * UIDVALIDITY as the imap driver hands it on (issue 14). RFC 3501 §2.3.1.1: a server's UIDs keep
 * their meaning only while the folder's UIDVALIDITY (a non-zero 32-bit number) is unchanged.
 * imapflow 2.10.2 (commands/select.js, tools.js parseBigIntValue) keeps the value only when it is
 * a run of 1 to 19 digits; `abc`, a longer number or none at all leave `uidValidity` undefined,
 * and the token itself is not reachable (its 'response' event is for tagged replies only). Zero
 * is no UIDVALIDITY either. A folder without a usable one gives no way to tell that its UIDs have
 * changed meaning, so they are trusted within one run only: it is handed on with a stand-in,
 * negative (no server's value is) and random for each Source or Sink, so it never equals what an
 * earlier run recorded and every run is a UIDVALIDITY change: the archive is re-matched by header
 * fingerprint (nothing copied twice, nothing missed), at the cost of reading every header.
 */
export class UidValidities {
  /** This run's stand-in: below zero, 64 random bits. */
  private readonly standIn = -1n - BigInt(`0x${randomBytes(8).toString('hex')}`);
  private readonly warned = new Set<string>();

  /** @param warn called once per folder that has none usable, with its path. */
  constructor(private readonly warn: (path: string) => void) {}

  /** The server's UIDVALIDITY when usable, else this run's stand-in (warned once per folder). */
  of(path: string, given: bigint | undefined): bigint {
    if (given !== undefined && given > 0n) return given;
    if (!this.warned.has(path)) {
      this.warned.add(path);
      this.warn(path);
    }
    return this.standIn;
  }
}

/** What the warning says after the folder's name. */
export const UNUSABLE =
  'has no usable UIDVALIDITY (RFC 3501 2.3.1.1): its UIDs are trusted for this run only, so every run re-matches it by message headers (slower)';
