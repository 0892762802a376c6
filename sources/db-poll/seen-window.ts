/** Most row hashes remembered for the look-back window; beyond it, re-reads are re-emitted (same change ids). */
export const MAX_SEEN = 10_000;

/**
 * The row versions an incremental view delivered inside its look-back
 * window, so that a poll re-reading the window does not emit them again.
 *
 * It holds only entries at or after `cursor time − window` (`prune`): every
 * later read starts at or after that time, so an older entry can never match
 * again. And at most `max` of them, the newest. Entries are kept oldest first
 * (rows arrive in cursor order, so nearly always at the end), so pruning
 * drops from the front; a poll over millions of rows costs O(1) per row and
 * memory for the window only.
 */
export class SeenWindow {
  private readonly times = new Map<string, number>();
  /** `[epochMs, hash]`, oldest first, from `head` on; the slots before `head` are dropped ones not yet compacted away. */
  private entries: [number, string][] = [];
  private head = 0;

  constructor(
    initial: readonly (readonly [number, string])[] = [],
    private readonly max: number = MAX_SEEN,
  ) {
    for (const [time, hash] of initial) this.add(time, hash);
  }

  /** How many row versions are remembered. */
  get size(): number {
    return this.times.size;
  }

  has(hash: string): boolean {
    return this.times.has(hash);
  }

  add(time: number, hash: string): void {
    // A time that does not parse (a MySQL zero date) could never be pruned by time: not remembered, re-read rows keep their change id.
    if (this.times.has(hash) || !Number.isFinite(time)) return;
    this.times.set(hash, time);
    const last = this.entries[this.entries.length - 1];
    if (last === undefined || this.entries.length === this.head || last[0] <= time) this.entries.push([time, hash]);
    // A row committed late, with an older time than rows already remembered: rare, so a plain insert.
    else this.entries.splice(this.firstAfter(time), 0, [time, hash]);
    if (this.times.size > this.max) this.dropOldest(this.times.size - this.max);
  }

  /** Forgets the entries older than `since` (epoch ms). */
  prune(since: number): void {
    let n = 0;
    while (this.head + n < this.entries.length && this.entries[this.head + n]![0] < since) n++;
    this.dropOldest(n);
  }

  /** The entries, oldest first: what the checkpoint stores. */
  toJSON(): [number, string][] {
    return this.entries.slice(this.head);
  }

  private dropOldest(n: number): void {
    for (let i = 0; i < n; i++) this.times.delete(this.entries[this.head + i]![1]);
    this.head += n;
    // Compact once the dropped slots are the larger part, so dropping stays O(1) per entry.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Index of the first live entry with a time above `time`. */
  private firstAfter(time: number): number {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]![0] <= time) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
