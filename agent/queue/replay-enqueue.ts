import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { FerryEvent } from '../event/cloud-event.js';
import { encodeEventLines } from '../event/event-batch.js';
import { partitionOf } from './partition.js';
import { openPartitionQueue } from './partition-queue.js';

/**
 * Queues events outside the reader (for `ferry dlq replay`): split by key
 * partition, in batches of `maxEvents`, at the back of each partition so
 * they never overtake events already waiting for the same key.
 */
export async function enqueueForSinks(
  redis: Redis,
  prefix: string,
  pipeline: string,
  sinks: readonly string[],
  delivery: { partitions: number; batch: { maxEvents: number } },
  events: readonly FerryEvent[],
): Promise<void> {
  const byPartition = new Map<number, FerryEvent[]>();
  for (const e of events) {
    const p = partitionOf(e.subject, delivery.partitions);
    const list = byPartition.get(p) ?? [];
    list.push(e);
    byPartition.set(p, list);
  }
  for (const sink of sinks) {
    for (const [p, list] of byPartition) {
      const queue = openPartitionQueue(redis, prefix, pipeline, sink, p);
      try {
        for (let i = 0; i < list.length; i += delivery.batch.maxEvents) {
          const chunk = list.slice(i, i + delivery.batch.maxEvents);
          const h = createHash('sha256').update(String(Date.now()));
          for (const e of chunk) h.update(e.id);
          await queue.add('batch', { events: encodeEventLines(chunk.map((e) => JSON.stringify(e))), queuedAt: Date.now() }, { jobId: `r${h.digest('hex').slice(0, 32)}` });
        }
      } finally {
        await queue.close();
      }
    }
  }
}
