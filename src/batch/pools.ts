/**
 * Connection caps across the rows that run at once (`--jobs N`). Each row states what it will open
 * on each account (its `--connections`, one for POP3) and the caps its provider profile gives:
 * `limits.connections` per account, and `limits.serverConnections` per server (host and port),
 * shared by every account on it. A row starts only when every count it needs fits under every cap
 * at once; it takes them all together and gives them all back when it ends, so two rows never wait
 * on each other holding half (no deadlock). A row that counts a daily budget on an account has
 * that account to itself (`exclusive`). A row asking more than a cap alone (a profile read
 * after the row was capped) is clamped to the cap, so it can always start on its own.
 */
export interface Need {
  /** `user@host:port`: the account, as the provider counts it. */
  readonly account: string;
  /** `host:port`. */
  readonly server: string;
  readonly connections: number;
  readonly accountCap?: number;
  readonly serverCap?: number;
  /**
   * The row counts a daily budget on this account (sources/daily-budget.ts: one state file per
   * account, read when a run starts and rewritten as it goes), so no other row may use the account
   * while it runs: two would each count from the same start and the last to write would win.
   */
  readonly exclusive?: boolean;
}

/** The connections a need counts for: what the row asks, clamped to every cap of its account. */
function count(n: Need): number {
  return Math.min(n.connections, n.accountCap ?? Infinity, n.serverCap ?? Infinity);
}

export class ConnectionPools {
  private readonly used = new Map<string, number>();
  private readonly waiting: { needs: readonly Need[]; go: () => void }[] = [];

  /** Wait until `needs` fit, take them; resolves with the function that gives them back. */
  async acquire(needs: readonly Need[]): Promise<() => void> {
    if (this.fits(needs)) this.take(needs, 1);
    else await new Promise<void>((go) => this.waiting.push({ needs, go })); // wake() took them
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.take(needs, -1);
      this.wake();
    };
  }

  /** Connections held now on `key` (an account or a server). */
  holding(key: string): number {
    return this.used.get(key) ?? 0;
  }

  private fits(needs: readonly Need[]): boolean {
    for (const n of needs) {
      const held = this.holding(`account ${n.account}`) > 0;
      if (held && (n.exclusive === true || this.holding(`alone ${n.account}`) > 0)) return false;
    }
    const want = new Map<string, { n: number; cap: number }>();
    for (const n of needs) {
      for (const [key, cap] of [[`account ${n.account}`, n.accountCap], [`server ${n.server}`, n.serverCap]] as const) {
        if (cap === undefined) continue;
        const w = want.get(key) ?? { n: 0, cap };
        w.n += count(n);
        w.cap = Math.min(w.cap, cap);
        want.set(key, w);
      }
    }
    for (const [key, w] of want) if (this.holding(key) > 0 && this.holding(key) + w.n > w.cap) return false;
    return true;
  }

  private take(needs: readonly Need[], sign: 1 | -1): void {
    for (const n of needs) {
      for (const key of [`account ${n.account}`, `server ${n.server}`, ...(n.exclusive === true ? [`alone ${n.account}`] : [])]) {
        const v = this.holding(key) + sign * count(n);
        if (v === 0) this.used.delete(key);
        else this.used.set(key, v);
      }
    }
  }

  /** Start, in arrival order, every waiting row that fits now. */
  private wake(): void {
    for (let i = 0; i < this.waiting.length; ) {
      const w = this.waiting[i];
      if (w !== undefined && this.fits(w.needs)) {
        this.waiting.splice(i, 1);
        this.take(w.needs, 1);
        w.go();
      } else i++;
    }
  }
}
