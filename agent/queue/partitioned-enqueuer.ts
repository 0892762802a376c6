import { hash, randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DeliveryConfig } from '../config/schema.js';
import type { FerryEvent } from '../event/cloud-event.js';
import { pieceStart, type MappedBatch } from '../pipeline/mapped-batch.js';
import { queueBatch } from './batch-payload.js';
import { OffHeapText } from './off-heap-text.js';
import { partitionOf } from './partition.js';

/** Tells this process's batch job ids from those a previous run gave the same events. */
const RUN_NONCE = randomBytes(16);
import { openPartitionQueue } from './partition-queue.js';
import { writeUntilStored } from './write-until-stored.js';

interface PartitionBuffer {
  queue: Queue;
  /** The buffered events' JSON lines (the job text, `encodeEventLines`), serialized once per event for every sink. */
  lines: OffHeapText;
  /** Their ids, each followed by a NUL: what the job id hashes. */
  ids: OffHeapText;
  /** How many of the buffered events belong to each source batch. */
  seqs: Map<number, number>;
  timer: NodeJS.Timeout | undefined;
  /** Flushes of one partition are chained so jobs enter its queue in order. */
  tail: Promise<void>;
}

interface Pending {
  count: number;
  sealed: boolean;
}

/**
 * Batches events into jobs and partitions them by key: one buffer per
 * (sink, partition), flushed as one BullMQ job when it holds
 * `batch.maxEvents` events or its oldest event has waited `batch.maxWaitMs`.
 *
 * It also tells the reader when a source batch is durable: every event of a
 * source batch is counted against that batch's sequence number, and when the
 * last of them is in Redis (and the batch is sealed) `onDurable(seq)` fires.
 * Holds (`hold`/`release`) let the reader count other writes, such as
 * dead-letter entries, the same way.
 */
export class PartitionedEnqueuer {
  private readonly buffers: PartitionBuffer[][];
  private readonly pending = new Map<number, Pending>();
  private inFlight = 0;
  private roomWaiters: Array<() => void> = [];
  private readonly maxInFlight: number;

  constructor(
    private readonly opts: {
      connection: Redis;
      prefix: string;
      pipeline: string;
      sinks: readonly string[];
      delivery: DeliveryConfig;
      logger: Logger;
      onDurable: (seq: number) => void;
      /** This run's part of every job id (tests stand for a restarted agent with another). */
      runNonce?: Buffer;
    },
  ) {
    const { partitions, batch } = opts.delivery;
    this.maxInFlight = Math.max(10_000, opts.sinks.length * partitions * batch.maxEvents * 2);
    this.buffers = opts.sinks.map((sink) =>
      Array.from({ length: partitions }, (_, p) => ({
        queue: openPartitionQueue(opts.connection, opts.prefix, opts.pipeline, sink, p),
        lines: new OffHeapText(0x0a),
        ids: new OffHeapText(0),
        seqs: new Map(),
        timer: undefined,
        tail: Promise.resolve(),
      })),
    );
  }

  /** Starts counting a source batch. */
  open(seq: number): void {
    this.pending.set(seq, { count: 0, sealed: false });
  }

  /** Adds one event to every sink's partition for its key. */
  add(event: FerryEvent, seq: number): void {
    this.addLine(JSON.stringify(event), event.id, partitionOf(event.subject, this.opts.delivery.partitions), seq);
  }

  /** Adds one event given as its JSON line, id and key partition to every sink's partition `p`. */
  addLine(line: string, id: string, p: number, seq: number): void {
    const pending = this.opened(seq);
    // Kept as bytes off the heap, not as strings: buffered events outlive a young-generation cycle.
    for (const sinkBuffers of this.buffers) {
      const buf = sinkBuffers[p]!;
      buf.lines.append(line);
      buf.ids.append(id);
      this.added(buf, seq, pending);
    }
  }

  /** Adds every event of a mapped source batch, in order, to every sink's partition for its key. */
  addMapped(batch: MappedBatch, seq: number): void {
    const pending = this.opened(seq);
    const { lines, lineEnds, ids, idEnds, partitions } = batch;
    for (let i = 0; i < batch.count; i++) {
      const lineStart = pieceStart(lineEnds, i);
      const idStart = pieceStart(idEnds, i);
      for (const sinkBuffers of this.buffers) {
        const buf = sinkBuffers[partitions[i]!]!;
        buf.lines.appendEncoded(lines, lineStart, lineEnds[i]!);
        buf.ids.appendEncoded(ids, idStart, idEnds[i]!);
        this.added(buf, seq, pending);
      }
    }
  }

  private opened(seq: number): Pending {
    const pending = this.pending.get(seq);
    if (!pending) throw new Error(`source batch ${seq} is not open`);
    return pending;
  }

  private added(buf: PartitionBuffer, seq: number, pending: Pending): void {
    buf.seqs.set(seq, (buf.seqs.get(seq) ?? 0) + 1);
    pending.count++;
    this.inFlight++;
    if (buf.lines.count >= this.opts.delivery.batch.maxEvents) this.flush(buf);
    else if (!buf.timer) buf.timer = setTimeout(() => this.flush(buf), this.opts.delivery.batch.maxWaitMs);
  }

  /** Counts one more outstanding write against a source batch. */
  hold(seq: number): void {
    const pending = this.pending.get(seq);
    if (pending) pending.count++;
  }

  release(seq: number, n = 1): void {
    const pending = this.pending.get(seq);
    if (!pending) return;
    pending.count -= n;
    this.settle(seq, pending);
  }

  /** No more events will be added to this source batch. */
  seal(seq: number): void {
    const pending = this.pending.get(seq);
    if (!pending) return;
    pending.sealed = true;
    this.settle(seq, pending);
  }

  /** Stops counting batch `seq` and every later one (the reader gave them up; see CheckpointTracker.abandonFrom). */
  forgetFrom(seq: number): void {
    for (const s of this.pending.keys()) if (s >= seq) this.pending.delete(s);
  }

  /** Resolves when there is room for another source batch: the backpressure on the reader. */
  async waitForRoom(): Promise<void> {
    if (this.inFlight < this.maxInFlight) return;
    await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
  }

  /** Queues everything buffered now and resolves when it is all in Redis. */
  async flushAll(): Promise<void> {
    for (const sinkBuffers of this.buffers) for (const buf of sinkBuffers) if (buf.lines.count > 0) this.flush(buf);
    await Promise.all(this.buffers.flat().map((b) => b.tail));
  }

  /** Source batches not yet durable. */
  get pendingBatches(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    await this.flushAll();
    await Promise.all(this.buffers.flat().map((b) => b.queue.close()));
  }

  private settle(seq: number, pending: Pending): void {
    if (pending.sealed && pending.count === 0) {
      this.pending.delete(seq);
      this.opts.onDurable(seq);
    }
  }

  private flush(buf: PartitionBuffer): void {
    if (buf.timer) {
      clearTimeout(buf.timer);
      buf.timer = undefined;
    }
    const count = buf.lines.count;
    if (count === 0) return;
    const bytes = buf.lines.copy();
    // Same events in this process ⇒ same job id, so a retried add whose first try did land is a no-op.
    // Not across a restart: a batch read again after a crash must queue behind what is already queued,
    // or a re-sent older change whose later change's job still waited would reach the target after it.
    // (sha256 over this process's nonce, then every id followed by a NUL.)
    const jobId = `b${hash('sha256', Buffer.concat([this.opts.runNonce ?? RUN_NONCE, buf.ids.view()]), 'hex').slice(0, 32)}`;
    const seqs = buf.seqs;
    buf.lines.clear();
    buf.ids.clear();
    buf.seqs = new Map();
    buf.tail = buf.tail.then(() => this.addJob(buf.queue, bytes, count, jobId, seqs));
  }

  private async addJob(queue: Queue, bytes: Buffer, count: number, jobId: string, seqs: Map<number, number>): Promise<void> {
    await writeUntilStored(() => queueBatch(this.opts.connection, queue, jobId, bytes, count), this.opts.logger, 'queue a batch', { queue: queue.name });
    this.inFlight -= count;
    for (const [seq, n] of seqs) this.release(seq, n);
    if (this.inFlight < this.maxInFlight && this.roomWaiters.length > 0) {
      const waiters = this.roomWaiters;
      this.roomWaiters = [];
      for (const w of waiters) w();
    }
  }
}
