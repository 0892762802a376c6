import { randomBytes } from 'node:crypto';
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { FerryEvent } from '../event/cloud-event.js';
import { EventBatch } from '../event/event-batch.js';

/**
 * What a queued job carries. A batch the reader queued keeps its events
 * outside the job, as raw bytes in a payload key beside it (`payload`);
 * replays and jobs of earlier versions carry them inline (`events`).
 *
 * Why a payload key: BullMQ stores job data as JSON, so a thousand events of
 * JSON text inside the job get escaped, measured and re-encoded on the way
 * in and parsed on the way out — a third of the reading thread's time per
 * event. The bytes the enqueuer already holds go to Redis as they are.
 */
export interface BatchJobData {
  /** Inline events: JSON-lines text (`encodeEventLines`) or an array (earlier versions). */
  events?: string | FerryEvent[];
  /** The nonce of the payload key holding the batch (see `payloadKey`). */
  payload?: string;
  /** Events in the payload. */
  count?: number;
  /** When the batch was queued (ms since epoch), for the end-to-end lag metric. */
  queuedAt: number;
}

type Keyed = Pick<Queue, 'toKey'>;

/**
 * A payload lives in its queue's key space (so obliterating the queue takes it
 * too), named by the job id and a nonce of the write that created it: a job id
 * queued twice (a re-read after a restart) never shares a payload with the job
 * already there, and each payload has exactly one owner to delete it.
 */
export function payloadKey(queue: Keyed, jobId: string, nonce: string): string {
  return queue.toKey(`payload:${jobId}:${nonce}`);
}

/**
 * Stores a batch and queues its job: the payload first, so a job never exists
 * without its bytes. When the job id was already queued, BullMQ keeps the job
 * it has and this payload belongs to nobody: it is deleted at once.
 */
export async function queueBatch(redis: Redis, queue: Queue, jobId: string, bytes: Buffer, count: number): Promise<void> {
  const nonce = randomBytes(8).toString('hex');
  const key = payloadKey(queue, jobId, nonce);
  await redis.set(key, bytes);
  const data: BatchJobData = { payload: nonce, count, queuedAt: Date.now() };
  await queue.add('batch', data, { jobId });
  const held = await redis.hget(queue.toKey(jobId), 'data');
  // No job (ours was delivered already, its payload deleted) or another write's job: nobody reads this key.
  if (held === null || (JSON.parse(held) as BatchJobData).payload !== nonce) await redis.del(key);
}

/** The job's batch, or undefined when its payload is gone from Redis. */
export async function loadBatch(redis: Redis, queue: Keyed, job: Job<BatchJobData>): Promise<EventBatch | undefined> {
  const { events, payload, count } = job.data;
  if (payload === undefined) return EventBatch.fromJob(events ?? []);
  const bytes = await redis.getBuffer(payloadKey(queue, job.id!, payload));
  return bytes === null ? undefined : EventBatch.fromPayload(bytes, count ?? 0);
}

/** Deletes a finished job's payload (called once BullMQ has recorded the job as done). */
export async function deletePayload(redis: Redis, queue: Keyed, job: Job<BatchJobData>): Promise<void> {
  if (job.data.payload !== undefined) await redis.del(payloadKey(queue, job.id!, job.data.payload));
}

/**
 * Deletes payloads no job refers to in `queues` (a sink's partitions): left
 * by a crash between storing a payload and queueing its job, or between a
 * job's completion and its payload's deletion. Only payloads untouched for
 * `minIdleSeconds` count as left over: a writer in another process may be
 * between its two steps right now. One SCAN for all the queues (a SCAN walks
 * the whole keyspace, however narrow its pattern). Returns how many were deleted.
 */
export async function sweepOrphanPayloads(redis: Redis, queues: readonly Keyed[], minIdleSeconds = 300): Promise<number> {
  const prefixes = queues.map((queue) => ({ queue, prefix: payloadKey(queue, '', '').slice(0, -1) }));
  if (prefixes.length === 0) return 0;
  const common = commonPrefix(prefixes.map((p) => p.prefix));
  let swept = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(common)}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const owner = prefixes.find((p) => key.startsWith(p.prefix));
      if (!owner) continue;
      const [jobId, nonce] = key.slice(owner.prefix.length).split(':');
      if (jobId === undefined || nonce === undefined) continue;
      const held = await redis.hget(owner.queue.toKey(jobId), 'data');
      if (held !== null && (JSON.parse(held) as BatchJobData).payload === nonce) continue;
      const idle = Number(await redis.object('IDLETIME', key));
      if (idle < minIdleSeconds) continue;
      swept += await redis.del(key);
    }
  } while (cursor !== '0');
  return swept;
}

function commonPrefix(strings: readonly string[]): string {
  let prefix = strings[0] ?? '';
  for (const s of strings) while (!s.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix;
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}
