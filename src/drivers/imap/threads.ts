/**
 * Gmail conversations of a run: per source thread (X-GM-THRID on the source), the threads Gmail
 * gave its messages on the target. `take()` gives the counts and starts afresh (one per run or
 * --watch pass).
 */
export class Threads {
  private readonly of = new Map<string, Set<string>>();

  add(source: string, target: string): void {
    const set = this.of.get(source) ?? new Set<string>();
    set.add(target);
    this.of.set(source, set);
  }

  /** Conversations seen, and how many of them became more than one thread on the target. */
  take(): { conversations: number; split: number } {
    const split = [...this.of.values()].filter((s) => s.size > 1).length;
    const conversations = this.of.size;
    this.of.clear();
    return { conversations, split };
  }
}
