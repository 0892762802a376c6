import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { DeliveryConfig } from '../../agent/config/schema.js';
import type { FerryEvent } from '../../agent/event/cloud-event.js';
import { MappedBatchBuilder } from '../../agent/pipeline/mapped-batch.js';
import { loadBatch, payloadKey, queueBatch, sweepOrphanPayloads } from '../../agent/queue/batch-payload.js';
import { DeadLetterQueue } from '../../agent/queue/dead-letter-queue.js';
import { DeliveryWorkers } from '../../agent/queue/delivery-worker.js';
import { PartitionedEnqueuer } from '../../agent/queue/partitioned-enqueuer.js';
import { partitionOf } from '../../agent/queue/partition.js';
import { partitionQueueName } from '../../agent/queue/queue-names.js';
import { openPartitionQueue } from '../../agent/queue/partition-queue.js';
import { createLogger } from '../../agent/telemetry/logger.js';
import { Telemetry } from '../../agent/telemetry/metrics.js';
import { fileSink } from '../../sinks/file/index.js';
import { sampleEvents } from '../conformance/describe-sink.js';
import { tempWorkspace, uniquePrefix, waitFor } from '../support/agent-process.js';

/**
 * Batch payloads against real Redis: a reader's batch travels as bytes in a
 * payload key beside its BullMQ job. These tests hold the claims the design
 * rests on: the bytes arrive exactly, no payload outlives its delivery, a job
 * id queued twice leaves one payload, left-overs of a crash are swept (and
 * only they), and a job whose payload is gone is dead-lettered visibly while
 * the partition goes on.
 */

const redis = new Redis(6379, '127.0.0.1', { maxRetriesPerRequest: null });
const logger = createLogger('silent');
afterAll(() => redis.disconnect());

const DELIVERY: DeliveryConfig = { partitions: 2, batch: { maxEvents: 50, maxWaitMs: 10 }, retry: { attempts: 3, initialMs: 20, maxMs: 100 } };

async function rig(name: string) {
  const prefix = uniquePrefix(name);
  const dir = tempWorkspace(name);
  const path = join(dir, 'out.jsonl');
  const sink = fileSink.create({ name: 'audit', type: 'file', path } as never, { configDir: dir });
  await sink.open({ pipeline: 'p', sink: 'audit', agentId: 'test', dataDir: dir, logger });
  const deadLetters = new DeadLetterQueue(redis, prefix, 'p', 'audit');
  const workers = new DeliveryWorkers({ connection: redis, prefix, pipeline: 'p', sinkName: 'audit', sink, delivery: DELIVERY, deadLetters, telemetry: new Telemetry(), logger });
  const queues = [0, 1].map((p) => new Queue(partitionQueueName('p', 'audit', p), { connection: redis, prefix }));
  const lines = (): string[] => {
    try {
      return readFileSync(path, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  };
  const payloads = async (): Promise<string[]> => redis.keys(`${prefix}:*:payload:*`);
  return {
    prefix,
    queues,
    deadLetters,
    workers,
    lines,
    payloads,
    close: async () => {
      await workers.close(2000);
      await sink.close();
      await deadLetters.close();
      await Promise.all(queues.map((q) => q.close()));
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
    },
  };
}

function enqueuer(prefix: string): PartitionedEnqueuer {
  return new PartitionedEnqueuer({ connection: redis, prefix, pipeline: 'p', sinks: ['audit'], delivery: DELIVERY, logger, onDurable: () => {} });
}

describe('batch payloads', () => {
  it('deliver the exact JSON lines, given as strings or as mapped bytes, and are all deleted once delivered', async () => {
    const t = await rig('payload-exact');
    const names = ['Jürgen Straßer', '1 € and 𝄞', 'plain'];
    const events: FerryEvent[] = sampleEvents(400, 'payload').map((e, i) => ({ ...e, data: { ...e.data, name: `${names[i % 3]} ${i}` } }));
    const q = enqueuer(t.prefix);
    // The first half as strings (the snapshot command's way), the second as a MappedBatch (the reader's).
    q.open(1);
    for (const e of events.slice(0, 200)) q.add(e, 1);
    q.seal(1);
    const mapped = new MappedBatchBuilder();
    for (const e of events.slice(200)) mapped.add(JSON.stringify(e), e.id, partitionOf(e.subject, DELIVERY.partitions));
    q.open(2);
    q.addMapped(mapped.finish([], {}), 2);
    q.seal(2);
    await q.flushAll();
    expect((await t.payloads()).length).toBeGreaterThan(0);
    t.workers.start();
    await waitFor('400 lines in the file', () => t.lines().length >= 400, 20_000);
    expect(new Set(t.lines())).toEqual(new Set(events.map((e) => JSON.stringify(e))));
    await waitFor('no payload left', async () => (await t.payloads()).length === 0, 5_000);
    await q.close();
    await t.close();
  });

  it('a batch read again after a restart queues behind what is queued: a re-sent change is followed again by its key\'s later change', async () => {
    const prefix = uniquePrefix('requeue-order');
    const one: DeliveryConfig = { ...DELIVERY, partitions: 1 };
    const [v3, v4] = sampleEvents(2, 'requeue').map((e) => ({ ...e, subject: 'K1' }));
    const queueTwoBatches = async (runNonce: string) => {
      const q = new PartitionedEnqueuer({ connection: redis, prefix, pipeline: 'p', sinks: ['audit'], delivery: one, logger, onDurable: () => {}, runNonce: Buffer.from(runNonce) });
      for (const [seq, e] of [v3!, v4!].entries()) {
        q.open(seq);
        q.add(e, seq);
        q.seal(seq);
        await q.flushAll();
      }
      await q.close();
    };
    const queue = openPartitionQueue(redis, prefix, 'p', 'audit', 0);
    try {
      await queueTwoBatches('first run');
      // The first batch is delivered (its job removed), the second still waits; then the agent dies before its
      // position passed either, and the next run reads both again as the same two batches.
      const [delivered] = await queue.getJobs(['wait'], 0, 0, true);
      await delivered!.remove();
      await queueTwoBatches('second run');
      const order: string[] = [];
      for (const job of await queue.getJobs(['wait'], 0, -1, true)) order.push(...(await loadBatch(redis, queue, job))!.events.map((e) => e.id));
      // v4 (still queued), v3 again, and v4 again after it: applied in arrival order, the key ends at v4.
      expect(order).toEqual([v4!.id, v3!.id, v4!.id]);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it('a job id queued twice keeps one job and one payload', async () => {
    const t = await rig('payload-dup');
    const bytes = Buffer.from(`${sampleEvents(3, 'dup').map((e) => JSON.stringify(e)).join('\n')}\n`);
    await queueBatch(redis, t.queues[0]!, 'bsame', bytes, 3);
    await queueBatch(redis, t.queues[0]!, 'bsame', bytes, 3);
    expect(await t.queues[0]!.getJobCounts('wait')).toEqual({ wait: 1 });
    expect(await t.payloads()).toHaveLength(1);
    t.workers.start();
    await waitFor('3 lines', () => t.lines().length === 3, 10_000);
    await waitFor('no payload left', async () => (await t.payloads()).length === 0, 5_000);
    await t.close();
  });

  it('the sweep deletes payloads no job refers to once they are idle long enough, and never one a job refers to', async () => {
    const t = await rig('payload-sweep');
    const queue = t.queues[0]!;
    const bytes = Buffer.from(`${JSON.stringify(sampleEvents(1, 'sweep')[0])}\n`);
    await queueBatch(redis, queue, 'bkept', bytes, 1);
    const [kept] = await t.payloads();
    await redis.set(payloadKey(queue, 'bgone', 'feedfeedfeedfeed'), bytes);
    await redis.set(payloadKey(queue, 'bkept', '0000000000000000'), bytes);
    // Just written: a writer may be between storing its payload and queueing its job.
    expect(await sweepOrphanPayloads(redis, t.queues)).toBe(0);
    expect(await sweepOrphanPayloads(redis, t.queues, 0)).toBe(2);
    expect(await t.payloads()).toEqual([kept]);
    await t.close();
  });

  it('a job whose payload is gone goes to the dead-letter queue with what is known, and the partition goes on', async () => {
    const t = await rig('payload-missing');
    const queue = t.queues[0]!;
    const [lost, next] = sampleEvents(2, 'missing').map((e) => Buffer.from(`${JSON.stringify(e)}\n`));
    await queueBatch(redis, queue, 'blost', lost!, 1);
    const [lostPayload] = await t.payloads();
    await redis.del(lostPayload!);
    await queueBatch(redis, queue, 'bnext', next!, 1);
    t.workers.start();
    await waitFor('the next batch delivered', () => t.lines().length === 1, 10_000);
    await waitFor('one dead letter', async () => (await t.deadLetters.depth()) === 1, 5_000);
    const [entry] = await t.deadLetters.list();
    expect(entry).toMatchObject({ code: 'FERRY_QUEUE_PAYLOAD_MISSING', sink: 'audit', events: [] });
    expect(entry!.reason).toMatch(/1 events of batch blost .* are no longer in Redis/);
    await t.close();
  });
});
