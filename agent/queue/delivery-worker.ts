import { Worker, WaitingError, type Job } from 'bullmq';
import { circuitBreaker, handleWhen, ConsecutiveBreaker, ExponentialBackoff, BrokenCircuitError, CircuitState, type CircuitBreakerPolicy } from 'cockatiel';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DeliveryConfig } from '../config/schema.js';
import { PermanentError } from '../errors/index.js';
import { EventBatch, writesJsonLines } from '../event/event-batch.js';
import type { Sink } from '../plugin/sink.js';
import type { Telemetry } from '../telemetry/metrics.js';
import type { DeadLetterQueue } from './dead-letter-queue.js';
import { deletePayload, loadBatch, sweepOrphanPayloads, type BatchJobData } from './batch-payload.js';
import { partitionQueueName } from './queue-names.js';
import { RateLimiter, sleep } from './rate-limiter.js';
import { writeUntilStored } from './write-until-stored.js';

/** Why a delivery stopped waiting: the agent is shutting down. */
class ShuttingDown extends Error {}

/** BullMQ worker settings that keep each partition in order and never lose a job. */
const WORKER_OPTIONS = {
  concurrency: 1,
  // A job whose worker died is retried (moved back to the front of its
  // partition) as often as it takes: a job must never end up "failed".
  maxStalledCount: 1_000_000,
  lockDuration: 15_000,
  stalledInterval: 5_000,
  // Completed jobs are removed by the queue's default job options.
  autorun: false,
} as const;

/** The metrics delivery reports: the agent's `Telemetry`, or a forwarder to it from a delivery thread. */
export type DeliveryTelemetry = Pick<Telemetry, 'sinkReceived' | 'sinkDelivered' | 'error' | 'deadLetter'> & {
  circuitState: { set(labels: { pipeline: string; sink: string }, value: number): void };
};

export interface DeliveryWorkersOptions {
  connection: Redis;
  prefix: string;
  pipeline: string;
  sinkName: string;
  sink: Sink;
  delivery: DeliveryConfig;
  deadLetters: DeadLetterQueue;
  telemetry: DeliveryTelemetry;
  logger: Logger;
}

/**
 * Delivers one sink's partitions: one BullMQ worker per partition queue, one
 * job at a time, so events with the same key reach the sink in the order
 * they were queued. Each job is a batch; its delivery is retried inline
 * (exponential backoff with full jitter) so nothing overtakes it. A
 * `Retry-After` holds every partition of the sink, not only the one told:
 * it speaks for the target. A permanent error bisects the batch until the
 * poison event is alone; it goes to the dead-letter queue and its
 * neighbours are delivered. A batch that keeps failing after
 * `retry.attempts` goes to the dead-letter queue whole. While the sink's
 * circuit is open (five consecutive failures), partitions wait without
 * spending attempts, so a target that is down makes events wait in the
 * queue, not in the DLQ.
 */
export class DeliveryWorkers {
  private readonly workers: Worker<BatchJobData>[] = [];
  private readonly breaker: CircuitBreakerPolicy;
  private readonly limiter: RateLimiter | undefined;
  private readonly shutdown = new AbortController();
  /** Aborts sink writes still running at the close deadline. */
  private readonly hardStop = new AbortController();
  /** No write before this (ms since epoch): a target's `Retry-After` speaks for the whole sink. */
  private holdUntil = 0;

  constructor(private readonly opts: DeliveryWorkersOptions) {
    this.breaker = circuitBreaker(
      handleWhen((err) => !(err instanceof PermanentError)),
      { halfOpenAfter: new ExponentialBackoff({ initialDelay: 500, maxDelay: 30_000 }), breaker: new ConsecutiveBreaker(5) },
    );
    this.breaker.onStateChange((state) => {
      opts.telemetry.circuitState.set({ pipeline: opts.pipeline, sink: opts.sinkName }, circuitValue(state));
      opts.logger.warn({ sink: opts.sinkName, circuit: CircuitState[state] }, 'sink circuit changed state');
    });
    opts.telemetry.circuitState.set({ pipeline: opts.pipeline, sink: opts.sinkName }, 0);
    this.limiter = opts.delivery.rateLimit ? new RateLimiter(opts.delivery.rateLimit.perSecond) : undefined;
  }

  /** Circuit state for `ferry status`: closed, open or half-open. */
  get circuit(): string {
    return CircuitState[this.breaker.state].toLowerCase();
  }

  start(): void {
    for (let p = 0; p < this.opts.delivery.partitions; p++) {
      const worker: Worker<BatchJobData> = new Worker<BatchJobData>(partitionQueueName(this.opts.pipeline, this.opts.sinkName, p), (job, token) => this.process(job, token, worker), {
        connection: this.opts.connection,
        prefix: this.opts.prefix,
        ...WORKER_OPTIONS,
      });
      worker.on('error', (err) => this.opts.logger.error({ err, sink: this.opts.sinkName, partition: p }, 'delivery worker error'));
      // Only once BullMQ has recorded the job as done: a crash before that delivers it again, from its payload.
      worker.on('completed', (job) => {
        deletePayload(this.opts.connection, worker, job).catch((err) => this.opts.logger.warn({ err, job: job.id }, 'deleting a delivered batch payload failed; the next start sweeps it'));
      });
      void worker.run();
      this.workers.push(worker);
    }
    void sweepOrphanPayloads(this.opts.connection, this.workers)
      .then((n) => n > 0 && this.opts.logger.info({ sink: this.opts.sinkName, payloads: n }, 'deleted batch payloads left over by a crash'))
      .catch((err) => this.opts.logger.warn({ err, sink: this.opts.sinkName }, 'sweeping left-over batch payloads failed'));
  }

  /**
   * Stops taking jobs, lets running writes finish (aborting them at
   * `deadlineMs`), and puts jobs that were waiting out a backoff back at the
   * front of their partition.
   */
  async close(deadlineMs = 10_000): Promise<void> {
    this.shutdown.abort(new ShuttingDown('shutting down'));
    const timer = setTimeout(() => this.hardStop.abort(new ShuttingDown('shutdown deadline reached')), deadlineMs);
    try {
      await Promise.all(this.workers.map((w) => w.close()));
    } finally {
      clearTimeout(timer);
    }
  }

  private async process(job: Job<BatchJobData>, token: string | undefined, worker: Worker<BatchJobData>): Promise<void> {
    const { queuedAt } = job.data;
    try {
      const batch = await this.load(job, worker);
      if (batch === undefined) {
        await this.payloadMissing(job);
        return;
      }
      this.opts.telemetry.sinkReceived(this.opts.pipeline, this.opts.sinkName, batch.size);
      await this.deliver(batch, queuedAt);
    } catch (err) {
      if (err instanceof ShuttingDown) {
        // Back to the front of the partition: the next agent delivers it first.
        await job.moveToWait(token);
        throw new WaitingError();
      }
      throw err;
    }
  }

  /** The job's batch; a failed read is retried (a thrown error would fail the job and strand its events). */
  private async load(job: Job<BatchJobData>, worker: Worker<BatchJobData>): Promise<EventBatch | undefined> {
    for (let attempt = 1; ; attempt++) {
      if (this.shutdown.signal.aborted) throw new ShuttingDown();
      try {
        return await loadBatch(this.opts.connection, worker, job);
      } catch (err) {
        this.opts.logger.warn({ err: describe(err), job: job.id, attempt }, 'reading a batch payload failed; retrying');
        await sleep(Math.min(100 * 2 ** attempt, 5_000), this.shutdown.signal).catch(rethrowShutdown);
      }
    }
  }

  /** Delivers `batch`, bisecting on permanent errors; never throws except ShuttingDown. */
  private async deliver(batch: EventBatch, queuedAt: number): Promise<void> {
    const { sink } = this.opts;
    const { retry } = this.opts.delivery;
    let attempts = 0;
    let delayMs = retry.initialMs;
    for (;;) {
      if (this.shutdown.signal.aborted) throw new ShuttingDown();
      await this.waitForTarget();
      const closedBefore = this.breaker.state === CircuitState.Closed;
      try {
        await this.limiter?.take(batch.size, this.shutdown.signal).catch(rethrowShutdown);
        const started = process.hrtime.bigint();
        const signal = this.hardStop.signal;
        await this.breaker.execute(() => (writesJsonLines(sink) ? sink.writeJsonLines(batch.jsonLines, batch.size, signal) : sink.write(batch.events, signal)));
        this.opts.telemetry.sinkDelivered(this.opts.pipeline, this.opts.sinkName, batch.size, Number(process.hrtime.bigint() - started) / 1e9, queuedAt);
        return;
      } catch (err) {
        if (err instanceof ShuttingDown) throw err;
        if (this.hardStop.signal.aborted) throw new ShuttingDown();
        if (err instanceof BrokenCircuitError) {
          // The sink is known to be down: wait for the breaker, spend no attempt.
          await sleep(250, this.shutdown.signal).catch(rethrowShutdown);
          continue;
        }
        if (err instanceof PermanentError) {
          this.opts.telemetry.error(this.opts.pipeline, 'sink', this.opts.sinkName, err.code, 'delivering');
          if (batch.size > 1) {
            const half = Math.ceil(batch.size / 2);
            await this.deliver(batch.slice(0, half), queuedAt);
            await this.deliver(batch.slice(half), queuedAt);
          } else {
            await this.deadLetter(batch, 'FERRY_SINK_PERMANENT', err, attempts + 1);
          }
          return;
        }
        this.opts.telemetry.error(this.opts.pipeline, 'sink', this.opts.sinkName, errorType(err), 'delivering');
        // A half-open trial that fails says the sink is still down, not that this batch is bad.
        if (closedBefore) attempts++;
        if (attempts >= retry.attempts) {
          await this.deadLetter(batch, 'FERRY_SINK_RETRIES_EXHAUSTED', err, attempts);
          return;
        }
        const retryAfter = (err as { retryAfterMs?: number }).retryAfterMs;
        if (retryAfter !== undefined) this.holdUntil = Math.max(this.holdUntil, Date.now() + retryAfter);
        const wait = retryAfter !== undefined ? retryAfter : Math.random() * delayMs;
        delayMs = Math.min(retry.maxMs, delayMs * 2);
        this.opts.logger.warn({ sink: this.opts.sinkName, attempt: attempts, waitMs: Math.round(wait), err: describe(err) }, 'sink write failed; retrying');
        await sleep(wait, this.shutdown.signal).catch(rethrowShutdown);
      }
    }
  }

  /** Resolves once no `Retry-After` holds the sink; another partition may extend the hold meanwhile. */
  private async waitForTarget(): Promise<void> {
    for (let ms = this.holdUntil - Date.now(); ms > 0; ms = this.holdUntil - Date.now()) {
      await sleep(ms, this.shutdown.signal).catch(rethrowShutdown);
    }
  }

  /**
   * A job whose payload is gone: only Redis losing data (a restart without
   * persistence, a key deleted by hand) does that. Nothing can be delivered;
   * what is known goes to the dead-letter queue so the gap is visible.
   */
  private async payloadMissing(job: Job<BatchJobData>): Promise<void> {
    const entry = {
      pipeline: this.opts.pipeline,
      sink: this.opts.sinkName,
      code: 'FERRY_QUEUE_PAYLOAD_MISSING' as const,
      reason: `the ${job.data.count ?? 'unknown number of'} events of batch ${job.id} (queued ${new Date(job.data.queuedAt).toISOString()}) are no longer in Redis`,
      location: job.queueName,
      events: [],
      attempts: 0,
      at: new Date().toISOString(),
    };
    await writeUntilStored(() => this.opts.deadLetters.add([entry]), this.opts.logger, 'write to the dead-letter queue');
    this.opts.telemetry.error(this.opts.pipeline, 'sink', this.opts.sinkName, entry.code, 'delivering');
    this.opts.logger.error({ sink: this.opts.sinkName, code: entry.code, job: job.id }, entry.reason);
  }

  private async deadLetter(batch: EventBatch, code: 'FERRY_SINK_PERMANENT' | 'FERRY_SINK_RETRIES_EXHAUSTED', err: unknown, attempts: number): Promise<void> {
    const events = batch.events;
    const entry = {
      pipeline: this.opts.pipeline,
      sink: this.opts.sinkName,
      code,
      reason: describe(err),
      location: events.length === 1 ? events[0]!.ferryposition : undefined,
      events,
      attempts,
      at: new Date().toISOString(),
    };
    await writeUntilStored(() => this.opts.deadLetters.add([entry]), this.opts.logger, 'write to the dead-letter queue');
    this.opts.telemetry.deadLetter(this.opts.pipeline, this.opts.sinkName, events.length);
    this.opts.logger.error({ sink: this.opts.sinkName, code, events: events.length, reason: entry.reason }, 'events moved to the dead-letter queue');
  }
}

function rethrowShutdown(err: unknown): never {
  if (err instanceof ShuttingDown) throw err;
  throw new ShuttingDown(String(err));
}

function circuitValue(state: CircuitState): number {
  return state === CircuitState.Closed ? 0 : state === CircuitState.HalfOpen ? 2 : 1;
}

function errorType(err: unknown): string {
  return (err as { code?: string }).code ?? (err instanceof Error ? err.name : 'unknown');
}

function describe(err: unknown): string {
  if (err instanceof Error) return (err as { code?: string }).code ? `${(err as { code?: string }).code}: ${err.message}` : err.message;
  return String(err);
}
