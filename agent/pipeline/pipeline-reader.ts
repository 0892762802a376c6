import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CheckpointTracker } from '../checkpoint/tracker.js';
import type { StateStore } from '../checkpoint/state-store.js';
import { FerryError, RetryableError } from '../errors/index.js';
import type { MappingSet } from '../mapping/types.js';
import type { Checkpoint, Source, SourceRecord } from '../plugin/source.js';
import type { DeadLetterQueue } from '../queue/dead-letter-queue.js';
import type { PartitionedEnqueuer } from '../queue/partitioned-enqueuer.js';
import { checkpointKey } from '../queue/queue-names.js';
import { mapBatch } from './map-records.js';
import type { MappedBatch } from './mapped-batch.js';
import type { MappingThread } from './mapping-thread.js';
import { sleep } from '../queue/rate-limiter.js';
import type { Telemetry } from '../telemetry/metrics.js';
import { writeUntilStored } from '../queue/write-until-stored.js';

export interface PipelineReaderOptions {
  pipeline: string;
  agentId: string;
  dataDir: string;
  sourceType: string;
  source: Source;
  /** delivery.partitions: the key partition of each event is computed while mapping. */
  partitions: number;
  mappings: MappingSet;
  /** Maps batches on a thread of its own; without it they are mapped here, inline. */
  mappingThread?: MappingThread;
  enqueuer: PartitionedEnqueuer;
  mappingDeadLetters: DeadLetterQueue;
  redis: Redis;
  prefix: string;
  state: StateStore;
  telemetry: Telemetry;
  logger: Logger;
}

/**
 * The reading half of a pipeline: pulls batches from the source, maps each
 * record, queues the events (or dead-letters the record), and commits the
 * source position only once everything up to it is in Redis.
 *
 * Position order: checkpoints are released by the tracker strictly in source
 * order; the last released one is written to Redis first and only then is
 * the source told (`commit`), so a crash between the two repeats a commit,
 * never skips one.
 */
export class PipelineReader {
  private readonly tracker = new CheckpointTracker();
  private commitChain: Promise<void> = Promise.resolve();
  private lastCommitted: Checkpoint | undefined;
  private commitError: unknown;
  /** Batches handed to the mapping thread and not yet applied to the queue, oldest first. */
  private mapping: Promise<void>[] = [];
  private mapError: unknown;
  /** The first batch whose mapping failed: it and every later one are read again after the reopen. */
  private failedSeq: number | undefined;
  private mappingThread: MappingThread | undefined;

  constructor(private readonly opts: PipelineReaderOptions) {
    this.mappingThread = opts.mappingThread;
  }

  /** Whether the source is open and reading (for /readyz). */
  reading = false;

  /** Why the source is not reading while it waits to reopen (for `ferry status`); cleared once it reads. */
  waitingFor: { code: string; message: string } | undefined;

  /**
   * Reads until `signal` aborts (then drains: every event read is queued and
   * its position committed) or a non-retryable error ends the pipeline
   * (thrown). Retryable errors reopen the source from the last committed
   * position with backoff.
   */
  async run(signal: AbortSignal): Promise<void> {
    let backoffMs = 500;
    while (!signal.aborted) {
      let progressed = false;
      try {
        const from = await this.loadCheckpoint();
        this.lastCommitted = from;
        await this.opts.source.open(from, this.sourceContext());
        // The previous run may have stored this checkpoint and died before telling the source.
        if (from !== undefined) await this.opts.source.commit?.(from);
        this.reading = true;
        this.waitingFor = undefined;
        this.opts.logger.info({ from }, 'source open');
        for await (const batch of this.opts.source.read(signal)) {
          progressed = true;
          backoffMs = 500;
          await this.opts.enqueuer.waitForRoom();
          // A few batches are mapped ahead of the queue; more would only hold memory.
          if (this.mapping.length >= MAX_BATCHES_MAPPING) await this.mapping[0];
          this.queueBatch(batch.records, batch.checkpoint);
          if (this.commitError) throw this.commitError;
          if (this.mapError) throw this.mapError;
        }
        if (!signal.aborted) this.opts.logger.info('source has no more records');
        await this.drain();
        return;
      } catch (err) {
        this.reading = false;
        await this.drain().catch((drainErr) => this.opts.logger.error({ err: drainErr }, 'drain after a source error failed'));
        if (!isRetryable(err)) throw err;
        if (progressed) backoffMs = 500;
        const code = (err as FerryError).code ?? 'error';
        const message = String((err as Error).message ?? err);
        this.waitingFor = { code, message };
        this.opts.telemetry.error(this.opts.pipeline, 'source', this.opts.sourceType, code, 'reading');
        if (isStandby(err)) {
          // Another reader holds what this source needs: wait for it to let go (a hot standby), never exit,
          // or a service manager would restart the agent into the same error every few seconds.
          this.opts.logger.error({ code, err: message, fix: (err as FerryError).fix, retryInMs: STANDBY_MS }, 'source is held by another reader; standing by');
          await sleep(STANDBY_MS, signal).catch(() => {});
          continue;
        }
        this.opts.logger.warn({ code, err: message, fix: (err as FerryError).fix, retryInMs: backoffMs }, 'source failed; reopening from the last committed position');
        await sleep(backoffMs, signal).catch(() => {});
        backoffMs = Math.min(backoffMs * 2, 30_000);
      } finally {
        this.reading = false;
        await this.opts.source.close().catch((err) => this.opts.logger.warn({ err }, 'closing the source failed'));
      }
    }
  }

  /**
   * Maps one source batch and hands its events to the enqueuer. Batches reach
   * the enqueuer in source order whether mapped here or on the mapping
   * thread (its answers are applied one after the other), so per-key order
   * holds either way.
   */
  private queueBatch(records: readonly SourceRecord[], checkpoint: Checkpoint): void {
    const { pipeline, enqueuer, mappings } = this.opts;
    const { mappingThread } = this;
    const seq = this.tracker.track(checkpoint);
    enqueuer.open(seq);
    if (!mappingThread) {
      this.applyMapped(seq, records.length, mapBatch(records, mappings, pipeline, this.opts.partitions));
      return;
    }
    const mapped = mappingThread.map(records);
    // Observed now, handled below once the batches before it are applied: an
    // unobserved rejection in the meantime would end the process.
    mapped.catch(() => undefined);
    // Only the count is kept: holding the records until the answer comes would make every scavenge copy them.
    const read = records.length;
    const previous = this.mapping[this.mapping.length - 1] ?? Promise.resolve();
    const applied = previous
      .then(() => mapped)
      .then((batch) => {
        // After a failed batch nothing later may reach the queue: re-read, the failed one would come after it.
        if (this.failedSeq === undefined) this.applyMapped(seq, read, batch);
      })
      .catch((err: unknown) => {
        // The batch stays open, so no position at or after it is committed; the reader stops and reopens there.
        this.failedSeq ??= seq;
        this.mapError ??= err;
      })
      // A block, not an expression: finally() would wait on the promise shift() returns, which is this one.
      .finally(() => {
        this.mapping.shift();
      });
    this.mapping.push(applied);
  }

  private applyMapped(seq: number, read: number, batch: MappedBatch): void {
    const { pipeline, enqueuer, telemetry } = this.opts;
    const { count, dead, filtered } = batch;
    enqueuer.addMapped(batch, seq);
    for (const [mapping, n] of Object.entries(filtered)) telemetry.recordsFiltered(pipeline, mapping, n);
    telemetry.sourceRead(pipeline, this.opts.sourceType, read);
    telemetry.eventsQueued(pipeline, this.opts.sourceType, count);
    if (dead.length > 0) {
      for (const d of dead) telemetry.contractViolation(pipeline, d.code);
      telemetry.deadLetter(pipeline, '_mapping', dead.length);
      this.opts.logger.warn({ records: dead.length, first: { location: dead[0]!.location, reason: dead[0]!.reason } }, 'records sent to the dead-letter queue');
      enqueuer.hold(seq);
      // Dead-letter writes count toward durability: the position never passes a record that is not safely stored.
      void writeUntilStored(() => this.opts.mappingDeadLetters.add(dead), this.opts.logger, 'write to the dead-letter queue').then(() => enqueuer.release(seq));
    }
    enqueuer.seal(seq);
  }

  /** Called by the enqueuer when a source batch's events are all in Redis. */
  onDurable(seq: number): void {
    const released = this.tracker.complete(seq);
    if (released.length === 0) return;
    this.commitChain = this.commitChain.then(() => this.commit(released)).catch((err) => {
      this.commitError = err;
      this.opts.logger.error({ err }, 'committing the source position failed');
    });
  }

  private async commit(released: Checkpoint[]): Promise<void> {
    const last = released[released.length - 1];
    await this.opts.redis.set(checkpointKey(this.opts.prefix, this.opts.pipeline), JSON.stringify(last));
    this.lastCommitted = last;
    for (const cp of released) await this.opts.source.commit?.(cp);
  }

  /** Waits until every event read so far is queued and every position committed. */
  private async drain(): Promise<void> {
    while (this.mapping.length > 0) await this.mapping[this.mapping.length - 1];
    await this.opts.enqueuer.flushAll();
    if (this.failedSeq !== undefined) {
      const failed = this.failedSeq;
      while (this.tracker.inFlightBefore(failed) > 0) await new Promise((r) => setTimeout(r, 10));
      await this.commitChain;
      this.tracker.abandonFrom(failed);
      this.opts.enqueuer.forgetFrom(failed);
      this.failedSeq = undefined;
      // A thread that failed once is not trusted again: this reader maps inline from now on.
      if (this.mappingThread) {
        this.opts.logger.warn({ err: String((this.mapError as Error)?.message ?? this.mapError) }, 'the mapping thread failed; mapping on the reading thread from now on');
        void this.mappingThread.close();
        this.mappingThread = undefined;
      }
    }
    // Dead-letter writes and the commit chain may still be running.
    while (this.tracker.inFlight > 0) await new Promise((r) => setTimeout(r, 10));
    await this.commitChain;
    const err = this.commitError ?? this.mapError;
    this.commitError = undefined;
    this.mapError = undefined;
    if (err) throw err;
  }

  get position(): Checkpoint | undefined {
    return this.lastCommitted;
  }

  private async loadCheckpoint(): Promise<Checkpoint | undefined> {
    const raw = await this.opts.redis.get(checkpointKey(this.opts.prefix, this.opts.pipeline));
    return raw === null ? undefined : (JSON.parse(raw) as Checkpoint);
  }

  private sourceContext() {
    const { pipeline, agentId, dataDir, state, logger } = this.opts;
    return { pipeline, agentId, dataDir, state, logger: logger.child({ component: 'source' }) };
  }
}

/** Batches mapped ahead of the queue at most (on the mapping thread). */
const MAX_BATCHES_MAPPING = 4;

/** How often a source held by another reader (a replication slot in use) tries again. */
const STANDBY_MS = 10_000;

function isStandby(err: unknown): boolean {
  return err instanceof FerryError && err.code === 'FERRY_SOURCE_SLOT_IN_USE';
}

/** Connection trouble and a held slot are worth reopening for; a user mistake or a lost position is not. */
function isRetryable(err: unknown): boolean {
  if (err instanceof RetryableError) return true;
  if (isStandby(err)) return true;
  if (err instanceof FerryError) return err.code === 'FERRY_SOURCE_UNAVAILABLE' || err.code === 'FERRY_QUEUE_UNAVAILABLE';
  // Unknown errors (a socket reset surfacing from a driver) get the benefit of the doubt.
  return true;
}
