/**
 * Names of the BullMQ queues of one pipeline. A (pipeline, sink) pair has
 * one queue per partition, so a slow sink never holds back another and each
 * partition is consumed in order by exactly one worker, plus a dead-letter
 * queue. Records that fail mapping or their contract have their own
 * dead-letter queue under the reserved sink name `_mapping` (sink names
 * cannot start with `_`).
 */
export const MAPPING_DLQ = '_mapping';

export function partitionQueueName(pipeline: string, sink: string, partition: number): string {
  return `${pipeline}.${sink}.p${partition}`;
}

export function deadLetterQueueName(pipeline: string, sink: string): string {
  return `${pipeline}.${sink}.dlq`;
}

/** Redis key holding the last committed source checkpoint of a pipeline. */
export function checkpointKey(prefix: string, pipeline: string): string {
  return `${prefix}:pipeline:${pipeline}:checkpoint`;
}

/** Redis hash with the source's durable state (see StateStore). */
export function sourceStateKey(prefix: string, pipeline: string): string {
  return `${prefix}:pipeline:${pipeline}:state`;
}
