import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DeliveryConfig } from '../../agent/config/schema.js';
import type { FerryEvent } from '../../agent/event/cloud-event.js';
import { DeadLetterQueue } from '../../agent/queue/dead-letter-queue.js';
import { DeliveryWorkers } from '../../agent/queue/delivery-worker.js';
import { partitionOf } from '../../agent/queue/partition.js';
import { openPartitionQueue } from '../../agent/queue/partition-queue.js';
import { enqueueForSinks } from '../../agent/queue/replay-enqueue.js';
import { Telemetry } from '../../agent/telemetry/metrics.js';
import { webhookSink } from '../../sinks/webhook/index.js';
import { sampleEvents } from '../conformance/describe-sink.js';
import { uniquePrefix, waitFor } from '../support/agent-process.js';

/**
 * The delivery workers against real Redis and a real HTTP target whose
 * behaviour each test scripts: bisection of a poison event, a target that is
 * down for a while, retries running out, backoff and Retry-After timing
 * (the wait the worker chose, read from its log; the order and least
 * spacing of the requests, from when the target saw each one), and a
 * shutdown in the middle of a backoff. A loaded machine may run late by
 * any amount, so a wait is bounded from above only grossly, where at all.
 */

interface Reply {
  status: number;
  retryAfter?: string;
  /** Answer this much later: a target that takes its time. */
  delayMs?: number;
}
type Answer = (events: FerryEvent[]) => number | Reply;
/** One request as the target saw it: when (performance.now()), which events, what it answered. */
interface Arrival {
  at: number;
  ids: string[];
  status: number;
}
let answer: Answer = () => 200;
const delivered = new Map<string, FerryEvent>();
const arrivals: Arrival[] = [];
let requests = 0;
let server: Server;
let url: string;
const redis = new Redis(6379, '127.0.0.1', { maxRetriesPerRequest: null });
/** Every line the workers log at warn and above, parsed: the backoff each retry chose is in them. */
const logLines: Array<Record<string, unknown>> = [];
const logger = pino({ level: 'warn' }, { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) });
/** The waits (ms) the worker announced before each retry, in order. */
const retryWaits = (): number[] => logLines.filter((l) => l.msg === 'sink write failed; retrying').map((l) => l.waitMs as number);

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      requests++;
      const events = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FerryEvent[];
      const given = answer(events);
      const reply = typeof given === 'number' ? { status: given } : given;
      arrivals.push({ at, ids: events.map((e) => e.id), status: reply.status });
      if (reply.status < 300) for (const e of events) delivered.set(e.id, e);
      const send = () => res.writeHead(reply.status, reply.retryAfter ? { 'retry-after': reply.retryAfter } : {}).end();
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
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
  vi.restoreAllMocks();
  arrivals.length = 0;
  logLines.length = 0;
  delivered.clear();
});

/** Milliseconds between the target's sight of consecutive requests. */
function gaps(list: readonly Arrival[]): number[] {
  return list.slice(1).map((a, i) => a.at - list[i]!.at);
}

function delivery(overrides: Partial<DeliveryConfig['retry']> = {}, partitions = 1, maxEvents = 500): DeliveryConfig {
  return { partitions, batch: { maxEvents, maxWaitMs: 10 }, retry: { attempts: 8, initialMs: 20, maxMs: 200, ...overrides } };
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
    // Down until the test says so, however long setup takes: the circuit must open while it is down.
    let down = true;
    answer = () => (down ? 503 : 200);
    const t = await setup('down', delivery({ attempts: 8 }, 2));
    const events = sampleEvents(400, 'down');
    await t.enqueue(events);
    t.workers.start();
    await waitFor('the circuit to open', () => t.workers.circuit === 'open', 10_000, 20);
    // Down 4 s more: 8 attempts at a backoff of at most 200 ms (or a 250 ms
    // wait per attempt, if an open circuit spent them) run out well within it.
    await new Promise((r) => setTimeout(r, 4000));
    down = false;
    // Stops at the first dead letter too: attempts spent while the target was down fail here, not by timing out.
    await waitFor('every event after the target came back', async () => delivered.size === 400 || (await t.deadLetters.depth()) > 0, 60_000);
    expect(await t.deadLetters.depth()).toBe(0);
    expect(delivered.size).toBe(400);
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

  it.each([0.999, 0.5])(
    'retries a 500 with exponential backoff and full jitter, capped at retry.maxMs (random draw %s)',
    async (draw) => {
      // Full jitter waits draw × cap: pinning the draw makes the cap sequence visible.
      vi.spyOn(Math, 'random').mockReturnValue(draw);
      answer = () => 500;
      const t = await setup(`backoff${draw}`, delivery({ attempts: 5, initialMs: 100, maxMs: 400 }));
      await t.enqueue(sampleEvents(3, `backoff-${draw}`));
      t.workers.start();
      await waitFor('the batch in the dead-letter queue', async () => (await t.deadLetters.depth()) === 1, 20_000);
      expect(arrivals).toHaveLength(5);
      // initialMs·2ⁿ⁻¹, capped at maxMs: 100, 200, 400, then 400 rather than 800; times the draw.
      const expected = [100, 200, 400, 400].map((cap) => Math.round(cap * draw));
      const waits = retryWaits();
      expect(waits, 'the waits the worker chose before retries 1-4').toEqual(expected);
      // And it did wait them: the target saw no retry sooner (a late one proves nothing on a loaded machine).
      gaps(arrivals).forEach((gap, n) => expect(gap, `time before retry ${n + 1}`).toBeGreaterThanOrEqual(waits[n]! - 5));
      await t.close();
    },
  );

  it('honours 429 Retry-After: 1: the retry comes a second later, not after the short backoff', async () => {
    let told = false;
    answer = () => {
      if (told) return 200;
      told = true;
      return { status: 429, retryAfter: '1' };
    };
    // A backoff of at most 50 ms: only Retry-After can make the wait a second.
    const t = await setup('retry-after', delivery({ attempts: 3, initialMs: 20, maxMs: 50 }));
    const events = sampleEvents(5, 'retry-after');
    await t.enqueue(events);
    t.workers.start();
    await waitFor('the batch delivered', () => events.every((e) => delivered.has(e.id)), 10_000, 10);
    expect(arrivals.map((a) => a.status)).toEqual([429, 200]);
    expect(arrivals[1]!.ids).toEqual(arrivals[0]!.ids);
    expect(retryWaits(), 'the wait the worker chose').toEqual([1000]);
    const [gap] = gaps(arrivals);
    expect(gap).toBeGreaterThanOrEqual(990);
    // Only a gross overshoot (Retry-After read as far more than a second); the lower bound is the check.
    expect(gap).toBeLessThan(5000);
    expect(await t.deadLetters.depth()).toBe(0);
    await t.close();
  });

  it('holds every partition of the sink for Retry-After, not only the one that was told', async () => {
    let told: number | undefined;
    answer = () => {
      if (told === undefined) {
        told = performance.now();
        return { status: 429, retryAfter: '1' };
      }
      // Slow enough that, unheld, the other partitions would still be sending during the second.
      return { status: 200, delayMs: 20 };
    };
    const t = await setup('retry-after-all', delivery({ attempts: 3, initialMs: 20, maxMs: 50 }, 4, 5));
    const events = sampleEvents(800, 'retry-after-all');
    await t.enqueue(events);
    t.workers.start();
    await waitFor('every event delivered', () => events.every((e) => delivered.has(e.id)), 30_000, 20);
    // Each partition sends one batch at a time, and the 429 reaches the told
    // partition (which then holds the sink) before any other partition can
    // finish a 20 ms request and its queue round trips: so during the second
    // of quiet only requests already on their way may land, at most one from
    // each other partition, none from the told one. Unheld, the other
    // partitions would send a request every few tens of ms all second long.
    const partition = new Map(events.map((e) => [e.id, partitionOf(e.subject, 4)]));
    const toldPartition = partition.get(arrivals[0]!.ids[0]!);
    const during = arrivals.filter((a) => a.at > told! && a.at < told! + 990).map((a) => partition.get(a.ids[0]!));
    expect(during.length, 'requests while the target had asked for a second of quiet').toBeLessThanOrEqual(3);
    expect(new Set(during).size, `partitions of those requests (${during.join(', ')}): at most one each`).toBe(during.length);
    expect(during, 'the told partition waits out Retry-After').not.toContain(toldPartition);
    expect(arrivals.filter((a) => a.at >= told! + 990).length).toBeGreaterThan(0);
    expect(await t.deadLetters.depth()).toBe(0);
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
    const q = openPartitionQueue(redis, t.prefix, 'p', 'hub', 0);
    const counts = await q.getJobCounts('wait', 'active', 'failed', 'completed');
    await q.close();
    expect(counts).toMatchObject({ wait: 1, active: 0, failed: 0 });
    expect(await t.deadLetters.depth()).toBe(0);
    await t.close();
  });
});
