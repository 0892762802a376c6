import type { Checkpoint } from '../plugin/source.js';

/**
 * Commits only contiguous positions. Batches are numbered as the source
 * yields them; they become durable out of order (their events land in
 * different partitions, flushed at different times). The tracker releases a
 * checkpoint only when every batch up to and including it is durable, so a
 * crash can never resume past an event that was not queued.
 */
export class CheckpointTracker {
  private nextSeq = 0;
  private nextToRelease = 0;
  private readonly pending = new Map<number, { checkpoint: Checkpoint; done: boolean }>();

  /** Registers the next batch in source order; returns its sequence number. */
  track(checkpoint: Checkpoint): number {
    const seq = this.nextSeq++;
    this.pending.set(seq, { checkpoint, done: false });
    return seq;
  }

  /**
   * Marks a batch durable. Returns the checkpoints that became committable,
   * in order (empty when an earlier batch is still pending). The caller
   * commits the last of them (and may tell the source about each).
   */
  complete(seq: number): Checkpoint[] {
    const entry = this.pending.get(seq);
    if (!entry) throw new Error(`checkpoint ${seq} is not pending`);
    entry.done = true;
    const released: Checkpoint[] = [];
    for (;;) {
      const head = this.pending.get(this.nextToRelease);
      if (!head || !head.done) break;
      released.push(head.checkpoint);
      this.pending.delete(this.nextToRelease);
      this.nextToRelease++;
    }
    return released;
  }

  /**
   * Forgets batch `seq` and every later one: they will never be durable (the
   * reader gave them up and reads them again from the last committed
   * position). Call it once every earlier batch is released, so numbering
   * goes on from here.
   */
  abandonFrom(seq: number): void {
    for (const s of this.pending.keys()) if (s >= seq) this.pending.delete(s);
    if (this.pending.size === 0) this.nextToRelease = this.nextSeq;
  }

  /** Batches before `seq` yielded but not yet durable. */
  inFlightBefore(seq: number): number {
    let n = 0;
    for (const s of this.pending.keys()) if (s < seq) n++;
    return n;
  }

  /** Batches yielded but not yet durable. */
  get inFlight(): number {
    return this.pending.size;
  }
}
