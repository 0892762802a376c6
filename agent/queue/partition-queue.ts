import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BatchJobData } from './batch-payload.js';
import { partitionQueueName } from './queue-names.js';

/** The event stream is for dashboards; cap it so it never grows without bound. */
export const STREAM_OPTIONS = { streams: { events: { maxLen: 1000 } } } as const;

/** Options every partition queue is created with: BullMQ's production advice. */
export const QUEUE_OPTIONS = {
  defaultJobOptions: { removeOnComplete: true, removeOnFail: 1000, attempts: 1 },
  ...STREAM_OPTIONS,
} as const;

/**
 * A handle on one partition queue, whatever it is for (queueing, setting its
 * concurrency, counting its jobs). Every BullMQ `Queue` writes its stream cap
 * into the queue's meta key when it connects, and the scripts of every
 * process read the cap from there: one handle opened without these options
 * lifts the cap to BullMQ's default of 10,000 for everyone.
 */
export function openPartitionQueue(connection: Redis, prefix: string, pipeline: string, sink: string, partition: number): Queue<BatchJobData> {
  return new Queue<BatchJobData>(partitionQueueName(pipeline, sink, partition), { connection, prefix, ...QUEUE_OPTIONS });
}
