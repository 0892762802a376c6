import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryConfig } from '../../agent/config/schema.js';
import type { FerryEvent } from '../../agent/event/cloud-event.js';
import { DeadLetterQueue } from '../../agent/queue/dead-letter-queue.js';
import { DeliveryWorkers } from '../../agent/queue/delivery-worker.js';
import { partitionQueueName } from '../../agent/queue/queue-names.js';
import { enqueueForSinks } from '../../agent/queue/replay-enqueue.js';
import { createLogger } from '../../agent/telemetry/logger.js';
import { Telemetry } from '../../agent/telemetry/metrics.js';
import { webhookSink } from '../../sinks/webhook/index.js';
import { sampleEvents } from '../conformance/describe-sink.js';
import { uniquePrefix, waitFor } from '../support/agent-process.js';

/**
 * The delivery workers against real Redis and a real HTTP target whose
 * behaviour each test scripts: bisection of a poison event, a target that is
 * down for a while, retries running out, and a shutdown in the middle of a
 * backoff.
 */

type Answer = (events: FerryEvent[]) => number;
let answer: Answer = () => 200;
const delivered = new Map<string, FerryEvent>();
let requests = 0;
let server: Server;
let url: string;
const redis = new Redis(6379, '127.0.0.1', { maxRetriesPerRequest: null });
const logger = createLogger('silent');

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests++;
      const events = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FerryEvent[];
      const status = answer(events);
      if (status < 300) for (const e of events) delivered.set(e.id, e);
      res.writeHead(status).end();
    });
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/events`;
});

afterAll(async () => {
  server.close();
  redis.disconnect();
});

function delivery(overrides: Partial<DeliveryConfig['retry']> = {}, partitions = 1): DeliveryConfig {
  return { partitions, batch: { maxEvents: 500, maxWaitMs: 10 }, retry: { attempts: 8, initialMs: 20, maxMs: 200, ...overrides } };
}

async function setup(name: string, d: DeliveryConfig) {
  const prefix = uniquePrefix(name);
  const sink = webhookSink.create({ name: 'hub', type: 'webhook', url, timeoutMs: 2000, method: 'POST' } as never, { configDir: '.' });
  await sink.open({ pipeline: 'p', sink: 'hub', agentId: 'test', dataDir: '.', logger });
  const deadLetters = new DeadLetterQueue(redis, prefix, 'p', 'hub');
  const workers = new DeliveryWorkers({ connection: redis, prefix, pipeline: 'p', sinkName: 'hub', sink, delivery: d, deadLetters, telemetry: new Telemetry(), logger });
  return {
    prefix,
    deadLetters,
    workers,
    enqueue: (events: FerryEvent[]) => enqueueForSinks(redis, prefix, 'p', ['hub'], d, events),
    close: async () => {
      await workers.close(2000);
      await sink.close();
      await deadLetters.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
    },
  };
}

describe('delivery workers', () => {
  it('bisects a batch the target rejects: the poison event goes to the dead-letter queue, its neighbours are delivered', async () => {
    delivered.clear();
    const events = sampleEvents(100, 'poison');
    const poison = events[37]!.id;
    answer = (batch) => (batch.some((e) => e.id === poison) ? 422 : 200);
    const t = await setup('poison', delivery());
    await t.enqueue(events);
    t.workers.start();
    await waitFor('99 events delivered and one dead letter', async () => delivered.size === 99 && (await t.deadLetters.depth()) === 1, 20_000);
    const [entry] = await t.deadLetters.list();
    expect(entry).toMatchObject({ code: 'FERRY_SINK_PERMANENT', sink: 'hub', events: [expect.objectContaining({ id: poison })] });
    expect(entry!.reason).toMatch(/422/);
    expect(delivered.has(poison)).toBe(false);
    await t.close();
  });

  it('waits out a target that is down without spending attempts (circuit breaker), then delivers everything', async () => {
    delivered.clear();
    const downUntil = Date.now() + 4000;
    answer = () => (Date.now() < downUntil ? 503 : 200);
    const t = await setup('down', delivery({ attempts: 8 }, 2));
    const events = sampleEvents(400, 'down');
    await t.enqueue(events);
    t.workers.start();
    await waitFor('the circuit to open', () => t.workers.circuit === 'open', 10_000, 20);
    await waitFor('every event after the target came back', () => delivered.size === 400, 60_000);
    expect(await t.deadLetters.depth()).toBe(0);
    await t.close();
  });

  it('dead-letters a batch whose retries run out, with the last error', async () => {
    delivered.clear();
    answer = () => 500;
    const t = await setup('exhausted', delivery({ attempts: 3 }));
    const before = requests;
    await t.enqueue(sampleEvents(10, 'exhausted'));
    t.workers.start();
    await waitFor('the batch in the dead-letter queue', async () => (await t.deadLetters.depth()) === 1, 20_000);
    const [entry] = await t.deadLetters.list();
    expect(entry).toMatchObject({ code: 'FERRY_SINK_RETRIES_EXHAUSTED', attempts: 3 });
    expect(entry!.events).toHaveLength(10);
    expect(requests - before).toBe(3);
    await t.close();
  });

  it('puts a batch waiting out a backoff back at the front of its partition on shutdown', async () => {
    answer = () => 500;
    const t = await setup('shutdown', delivery({ attempts: 8, initialMs: 60_000, maxMs: 60_000 }));
    const before = requests;
    await t.enqueue(sampleEvents(5, 'shutdown'));
    t.workers.start();
    await waitFor('the first attempt', () => requests > before, 10_000, 10);
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    await t.workers.close(2000);
    // The backoff is a minute; returning within seconds shows it was not waited out.
    expect(Date.now() - started).toBeLessThan(10_000);
    const q = new Queue(partitionQueueName('p', 'hub', 0), { connection: redis, prefix: t.prefix });
    const counts = await q.getJobCounts('wait', 'active', 'failed', 'completed');
    await q.close();
    expect(counts).toMatchObject({ wait: 1, active: 0, failed: 0 });
    expect(await t.deadLetters.depth()).toBe(0);
    await t.close();
  });
});
