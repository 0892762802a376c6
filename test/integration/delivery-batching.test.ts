import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryConfig } from '../../agent/config/schema.js';
import type { FerryEvent } from '../../agent/event/cloud-event.js';
import { DeadLetterQueue } from '../../agent/queue/dead-letter-queue.js';
import { DeliveryWorkers } from '../../agent/queue/delivery-worker.js';
import { PartitionedEnqueuer } from '../../agent/queue/partitioned-enqueuer.js';
import { partitionOf } from '../../agent/queue/partition.js';
import { openPartitionQueue } from '../../agent/queue/partition-queue.js';
import { createLogger } from '../../agent/telemetry/logger.js';
import { Telemetry } from '../../agent/telemetry/metrics.js';
import { webhookSink } from '../../sinks/webhook/index.js';
import { sampleEvents } from '../conformance/describe-sink.js';
import { uniquePrefix, waitFor } from '../support/agent-process.js';

/**
 * `delivery.batch` shapes the jobs, held end to end on the real path: the
 * reader's PartitionedEnqueuer queues into real Redis, the delivery workers
 * write to a real webhook, and the target records what each request held.
 */

/** One request as the target saw it. */
interface Write {
  at: number;
  ids: string[];
}
const writes: Write[] = [];
let server: Server;
let url: string;
const redis = new Redis(6379, '127.0.0.1', { maxRetriesPerRequest: null });
const logger = createLogger('silent');

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const events = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FerryEvent[];
      writes.push({ at: performance.now(), ids: events.map((e) => e.id) });
      res.writeHead(200).end();
    });
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/events`;
});

afterAll(async () => {
  server.close();
  redis.disconnect();
});

afterEach(() => {
  writes.length = 0;
});

async function rig(name: string, delivery: DeliveryConfig) {
  const prefix = uniquePrefix(name);
  const durable: Array<{ seq: number; at: number }> = [];
  const enqueuer = new PartitionedEnqueuer({ connection: redis, prefix, pipeline: 'p', sinks: ['hub'], delivery, logger, onDurable: (seq) => durable.push({ seq, at: performance.now() }) });
  const sink = webhookSink.create({ name: 'hub', type: 'webhook', url, timeoutMs: 5000, method: 'POST' } as never, { configDir: '.' });
  await sink.open({ pipeline: 'p', sink: 'hub', agentId: 'test', dataDir: '.', logger });
  const deadLetters = new DeadLetterQueue(redis, prefix, 'p', 'hub');
  const workers = new DeliveryWorkers({ connection: redis, prefix, pipeline: 'p', sinkName: 'hub', sink, delivery, deadLetters, telemetry: new Telemetry(), logger });
  /** Event counts of the jobs waiting in each partition, in queue order. */
  const waitingJobs = async (): Promise<number[][]> => {
    const out: number[][] = [];
    for (let p = 0; p < delivery.partitions; p++) {
      const queue = openPartitionQueue(redis, prefix, 'p', 'hub', p);
      // getJobs lists the wait list newest first.
      out.push((await queue.getJobs(['wait'])).reverse().map((job) => job.data.count ?? -1));
      await queue.close();
    }
    return out;
  };
  return {
    enqueuer,
    workers,
    durable,
    waitingJobs,
    close: async () => {
      await enqueuer.close();
      await workers.close(2000);
      await sink.close();
      await deadLetters.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
    },
  };
}

/** Full batches of `max`, then the rest: what `n` events of one partition must become. */
function expectedBatches(n: number, max: number): number[] {
  return [...Array.from({ length: Math.floor(n / max) }, () => max), ...(n % max ? [n % max] : [])];
}

describe('delivery.batch', () => {
  it('maxEvents M makes ceil(n/M) jobs per partition of at most M events, each delivered as one write in order', async () => {
    const M = 7;
    const delivery: DeliveryConfig = { partitions: 3, batch: { maxEvents: M, maxWaitMs: 200 }, retry: { attempts: 3, initialMs: 20, maxMs: 100 } };
    const t = await rig('batch-max', delivery);
    const events = sampleEvents(200, 'batch-max');
    const partitionOfId = new Map(events.map((e) => [e.id, partitionOf(e.subject, delivery.partitions)]));
    const byPartition = Array.from({ length: delivery.partitions }, (_, p) => events.filter((e) => partitionOfId.get(e.id) === p));
    expect(byPartition.every((list) => list.length > M)).toBe(true);

    t.enqueuer.open(1);
    for (const e of events) t.enqueuer.add(e, 1);
    t.enqueuer.seal(1);
    await waitFor('the source batch durable in Redis', () => t.durable.length === 1, 10_000, 10);

    const jobs = await t.waitingJobs();
    byPartition.forEach((list, p) => expect(jobs[p], `jobs of partition ${p}`).toEqual(expectedBatches(list.length, M)));

    t.workers.start();
    await waitFor('every event at the sink', () => writes.reduce((n, w) => n + w.ids.length, 0) >= events.length, 20_000, 20);
    // One write per job, nothing split or merged on the way, and a partition's writes in its order.
    expect(writes).toHaveLength(jobs.flat().length);
    for (const [p, list] of byPartition.entries()) {
      const mine = writes.filter((w) => partitionOfId.get(w.ids[0]!) === p);
      expect(mine.every((w) => w.ids.every((id) => partitionOfId.get(id) === p))).toBe(true);
      expect(mine.map((w) => w.ids.length)).toEqual(expectedBatches(list.length, M));
      expect(mine.flatMap((w) => w.ids)).toEqual(list.map((e) => e.id));
    }
    await t.close();
  });

  it('queues a partial batch once its oldest event has waited maxWaitMs, even while more events keep coming', async () => {
    const maxWaitMs = 300;
    const delivery: DeliveryConfig = { partitions: 1, batch: { maxEvents: 500, maxWaitMs }, retry: { attempts: 3, initialMs: 20, maxMs: 100 } };
    const t = await rig('batch-wait', delivery);
    t.workers.start();
    // A trickle faster than maxWaitMs, kept up until two writes have reached the
    // target (however slow the machine), then one event more: a wait restarted
    // by every event would hold them all until the trickle stopped. It stops
    // short of maxEvents, so only the wait can queue a batch meanwhile.
    const events = sampleEvents(400, 'batch-wait');
    const addedAt = new Map<string, number>();
    let added = 0;
    t.enqueuer.open(1);
    for (const e of events) {
      t.enqueuer.add(e, 1);
      addedAt.set(e.id, performance.now());
      added++;
      if (writes.length >= 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    t.enqueuer.seal(1);
    const sent = events.slice(0, added);

    expect(writes.length, `writes that reached the target while ${added} events trickled in`).toBeGreaterThanOrEqual(2);
    await waitFor('every event at the sink', () => writes.reduce((n, w) => n + w.ids.length, 0) >= sent.length, 20_000, 5);
    expect(writes.flatMap((w) => w.ids)).toEqual(sent.map((e) => e.id));
    // The first batch waited for company for maxWaitMs, not less...
    expect(writes[0]!.at - addedAt.get(events[0]!.id)!).toBeGreaterThanOrEqual(maxWaitMs - 5);
    // ...and no event waited grossly longer (a loaded machine may add seconds; the order check above is the real one).
    for (const w of writes) for (const id of w.ids) expect(w.at - addedAt.get(id)!, `wait of ${id}`).toBeLessThan(maxWaitMs + 5000);
    await t.close();
  });
});
