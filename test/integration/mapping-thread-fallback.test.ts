import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisStateStore } from '../../agent/checkpoint/state-store.js';
import { loadMappings } from '../../agent/mapping/load-mappings.js';
import type { MappingThread as MappingThreadClass } from '../../agent/pipeline/mapping-thread.js';
import { PipelineReader } from '../../agent/pipeline/pipeline-reader.js';
import type { Checkpoint, Source, SourceBatch, SourceRecord } from '../../agent/plugin/source.js';
import { loadBatch } from '../../agent/queue/batch-payload.js';
import { DeadLetterQueue } from '../../agent/queue/dead-letter-queue.js';
import { PartitionedEnqueuer } from '../../agent/queue/partitioned-enqueuer.js';
import { checkpointKey, partitionQueueName, sourceStateKey } from '../../agent/queue/queue-names.js';
import { createLogger } from '../../agent/telemetry/logger.js';
import { Telemetry } from '../../agent/telemetry/metrics.js';
import { uniquePrefix } from '../support/agent-process.js';

// The thread runs compiled code (its entry is the .js file next to it), as in the agent.
const compiled: string = '../../dist/agent/pipeline/mapping-thread.js';
const { MappingThread } = (await import(compiled)) as { MappingThread: typeof MappingThreadClass };

/**
 * The reader when its mapping thread dies mid-stream, against real Redis and
 * a real thread: batches handed to the dead thread are given up (nothing after
 * them reaches the queue first), the reader reopens its source from the last
 * committed position, maps inline from then on, and every record ends up
 * queued, in source order per key, with the position at the end.
 */

const redis = new Redis(6379, '127.0.0.1', { maxRetriesPerRequest: null });
afterAll(() => redis.disconnect());
const REPO = join(import.meta.dirname, '..', '..');
const ROWS = 3_000;
const PER_BATCH = 100;

/** A source of ROWS customer rows in batches of PER_BATCH; `onBatch` sees each batch number as it is yielded. */
class CountingSource implements Source {
  private next = 0;
  opens: number[] = [];
  constructor(private readonly onBatch: (n: number) => void) {}
  async open(from: Checkpoint | undefined): Promise<void> {
    this.next = (from as { n: number } | undefined)?.n ?? 0;
    this.opens.push(this.next);
  }
  async *read(signal: AbortSignal): AsyncIterable<SourceBatch> {
    const origin = { kind: 'file', name: 'kunden_1.csv' } as const;
    while (this.next < ROWS && !signal.aborted) {
      const records: SourceRecord[] = [];
      for (let i = this.next; i < Math.min(ROWS, this.next + PER_BATCH); i++) {
        records.push({
          origin,
          op: 'c',
          // Ten versions of each of 300 keys: per-key order is visible in the names.
          data: { KUNDE_NR: `K${i % 300}`, VORNAME: 'v', NACHNAME: String(i), EMAIL: 'a@b.de', SALDO: '1,00', KUNDE_SEIT: '01.01.2024', STATUS: 'A' },
          changeId: `c:${i}`,
          time: '2024-01-01T00:00:00.000Z',
          location: `kunden_1.csv:${i + 2}`,
          position: `kunden_1.csv#${i + 2}`,
        });
      }
      this.next += records.length;
      this.onBatch(this.next / PER_BATCH);
      yield { records, checkpoint: { n: this.next } };
      // Reading is slower than mapping in real sources; here the thread must have batches in flight when it dies.
      await new Promise((r) => setImmediate(r));
    }
  }
  async close(): Promise<void> {}
}

describe('mapping thread failure', () => {
  it('gives up the batches in flight, reopens from the last position, maps inline and loses nothing', async () => {
    const prefix = uniquePrefix('mapfail');
    const logger = createLogger('silent');
    const ctx = { pipeline: 'customers', agentId: 'test', baseDir: REPO };
    const mappings = await loadMappings(['mappings/customers.yaml'], ctx);
    const thread = await MappingThread.start({ ...ctx, files: ['mappings/customers.yaml'], partitions: 2 }, logger);
    const source = new CountingSource((n) => {
      if (n === 12) void thread.close();
    });
    const delivery = { partitions: 2, batch: { maxEvents: 250, maxWaitMs: 5 }, retry: { attempts: 3, initialMs: 10, maxMs: 100 } };
    let reader: PipelineReader | undefined;
    const enqueuer = new PartitionedEnqueuer({ connection: redis, prefix, pipeline: 'customers', sinks: ['audit'], delivery, logger, onDurable: (seq) => reader!.onDurable(seq) });
    const deadLetters = new DeadLetterQueue(redis, prefix, 'customers', '_mapping');
    reader = new PipelineReader({
      pipeline: 'customers', agentId: 'test', dataDir: '.', sourceType: 'counting', source, partitions: 2, mappings, mappingThread: thread, enqueuer,
      mappingDeadLetters: deadLetters, redis, prefix, state: new RedisStateStore(redis, sourceStateKey(prefix, 'customers')), telemetry: new Telemetry(), logger,
    });
    await reader.run(new AbortController().signal);
    await enqueuer.close();
    await deadLetters.close();

    // Reopened once, from a position no later than where the thread died.
    expect(source.opens).toHaveLength(2);
    expect(source.opens[1]!).toBeLessThanOrEqual(12 * PER_BATCH);
    expect(JSON.parse((await redis.get(checkpointKey(prefix, 'customers')))!)).toEqual({ n: ROWS });

    const names = new Map<string, string[]>();
    for (let p = 0; p < 2; p++) {
      const queue = new Queue(partitionQueueName('customers', 'audit', p), { connection: redis, prefix });
      // Oldest first: the order a worker takes them.
      const jobs = await queue.getJobs(['wait'], 0, -1, true);
      for (const job of jobs) {
        const batch = await loadBatch(redis, queue, job);
        for (const e of batch!.events) {
          const list = names.get(e.subject) ?? [];
          list.push(String(e.data.name));
          names.set(e.subject, list);
        }
      }
      expect(jobs.length).toBeGreaterThan(0);
      await queue.obliterate({ force: true });
      await queue.close();
    }
    expect(names.size).toBe(300);
    for (const [key, seen] of names) {
      // Every version arrived; a version re-read after the reopen may come twice, but never before an older one it follows.
      const versions = seen.map((n) => Number(n.slice(2)));
      const k = Number(key.slice(1));
      expect(new Set(versions)).toEqual(new Set(Array.from({ length: 10 }, (_, v) => k + v * 300)));
      for (let i = 1; i < versions.length; i++) if (versions[i]! < versions[i - 1]!) expect(versions.slice(0, i)).toContain(versions[i]);
    }
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  });
});
