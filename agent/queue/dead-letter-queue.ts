import { createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ErrorCode } from '../errors/index.js';
import type { FerryEvent } from '../event/cloud-event.js';
import type { Violation } from '../mapping/types.js';
import type { SourceRecord } from '../plugin/source.js';
import { STREAM_OPTIONS } from './partition-queue.js';
import { deadLetterQueueName, MAPPING_DLQ } from './queue-names.js';

/**
 * One dead-letter entry: what failed, why, and what is needed to try again.
 * Delivery failures keep the events; mapping and contract failures keep the
 * source record, so `ferry dlq replay` can map it again after the mapping is
 * fixed.
 */
export interface DeadLetterEntry {
  pipeline: string;
  /** The sink, or `_mapping` for records that never became valid events. */
  sink: string;
  code: ErrorCode;
  reason: string;
  violations?: Violation[];
  /** Where the record came from: file and line, table and position. */
  location?: string;
  events?: FerryEvent[];
  record?: SourceRecord;
  attempts?: number;
  /** For mapping entries: which mapping failed (one record may fail several). */
  mappingKey?: string;
  /** When it was dead-lettered, ISO 8601. */
  at: string;
}

export interface StoredDeadLetter extends DeadLetterEntry {
  id: string;
}

/**
 * A sink's dead-letter queue: a BullMQ queue that no worker consumes, so its
 * entries wait (visible in the queue dashboard) until replayed or purged.
 * Entry ids are derived from the event or change id, so dead-lettering the
 * same thing twice (after a crash) keeps one entry.
 */
export class DeadLetterQueue {
  readonly queue: Queue;

  constructor(
    connection: Redis,
    prefix: string,
    readonly pipeline: string,
    readonly sink: string,
  ) {
    this.queue = new Queue(deadLetterQueueName(pipeline, sink), { connection, prefix, ...STREAM_OPTIONS });
  }

  async add(entries: DeadLetterEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.queue.addBulk(
      entries.map((entry) => ({ name: entry.code, data: entry, opts: { jobId: entryId(entry), removeOnComplete: true, removeOnFail: false } })),
    );
  }

  async list(start = 0, end = -1): Promise<StoredDeadLetter[]> {
    const jobs = await this.queue.getJobs(['wait', 'paused', 'prioritized'], start, end, true);
    return jobs.filter((j) => j && j.id).map((j) => ({ ...(j.data as DeadLetterEntry), id: j.id as string }));
  }

  async get(id: string): Promise<StoredDeadLetter | undefined> {
    const job = await this.queue.getJob(id);
    return job ? { ...(job.data as DeadLetterEntry), id } : undefined;
  }

  async remove(id: string): Promise<void> {
    await this.queue.remove(id);
  }

  async depth(): Promise<number> {
    return this.queue.getJobCountByTypes('wait', 'paused', 'prioritized');
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/** Deterministic: `e-<hash of event ids>` for delivery entries, `m-<hash of change id>` for mapping entries. */
function entryId(entry: DeadLetterEntry): string {
  const h = createHash('sha256');
  if (entry.events && entry.events.length > 0) {
    for (const e of entry.events) h.update(e.id).update('\0');
    return `e-${h.digest('hex').slice(0, 32)}`;
  }
  h.update(entry.record?.changeId ?? entry.reason).update('\0').update(entry.mappingKey ?? '');
  return `m-${h.digest('hex').slice(0, 32)}`;
}

export { MAPPING_DLQ };
