import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { deadLetterQueueName, partitionQueueName } from '../../agent/queue/queue-names.js';
import { countLines, deleteRedisPrefix, startAgent, tempWorkspace, uniquePrefix, waitFor, type FerryProcess } from '../support/agent-process.js';
import { customersPipelineConfig, dropCsv, kundenRows } from '../support/legacy-csv.js';

/**
 * Redis hygiene as BullMQ advises for production, held against the real
 * agent split the way operators scale it out: a reader, then a separate
 * deliverer started once the backlog is queued (a deliverer restarted under
 * load). After delivery no job is kept, each queue's event stream stays at
 * its cap, and no batch payload outlives its delivery.
 */

const redis = new Redis(6379, '127.0.0.1', { maxRetriesPerRequest: null });
const running: FerryProcess[] = [];
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null) await p.kill();
  redis.disconnect();
});

const ROWS = 5_000;
const PARTITIONS = 2;
/** The cap docs/operations.md promises for every queue's event stream. */
const STREAM_CAP = 1_000;

describe('Redis hygiene', () => {
  it('keeps no delivered job, caps every event stream and deletes every payload, with reader and deliverer in separate processes', async () => {
    const dir = tempWorkspace('hygiene');
    const prefix = uniquePrefix('hygiene');
    // Five events a job: a thousand jobs, whose stream entries (added, waiting,
    // active, completed) would be four times the cap if nothing trimmed them.
    const config = customersPipelineConfig(dir, {
      id: 'test-hygiene',
      logLevel: 'warn',
      queue: { prefix },
      minAgeMs: 200,
      delivery: { partitions: PARTITIONS, batch: { maxEvents: 5, maxWaitMs: 50 } },
    });
    dropCsv(join(dir, 'inbox/kunden_hygiene.csv'), kundenRows(ROWS, 500));

    const reader = startAgent(config, { role: 'read' });
    running.push(reader);
    await waitFor('the file queued and archived', () => existsSync(join(dir, 'archive/kunden_hygiene.csv')) || reader.proc.exitCode !== null, 30_000);
    expect(reader.proc.exitCode).toBeNull();
    // No job hash or payload may survive its delivery (job ids are `b` and 32 hex digits).
    const jobKeys = async () => (await redis.keys(`${prefix}:customers.audit.p*`)).filter((k) => /:b[0-9a-f]{32}$/.test(k));
    const payloadKeys = async () => redis.keys(`${prefix}:*:payload:*`);
    // The backlog is there, so what vanishes later was really removed.
    expect((await jobKeys()).length).toBeGreaterThanOrEqual(ROWS / 5);
    expect((await payloadKeys()).length).toBe((await jobKeys()).length);

    const deliverer = startAgent(config, { role: 'deliver' });
    running.push(deliverer);
    const out = join(dir, 'out/customers.jsonl');
    await waitFor(`${ROWS} events at the sink`, () => countLines(out) >= ROWS || deliverer.proc.exitCode !== null, 40_000, 100);
    expect(countLines(out)).toBe(ROWS);
    // Payloads go once BullMQ has recorded their job as done: a moment after the write.
    await waitFor('every batch payload deleted', async () => (await payloadKeys()).length === 0, 5_000);

    const nodeEntries = Number(((await redis.config('GET', 'stream-node-max-entries')) as string[])[1]);
    for (let p = 0; p < PARTITIONS; p++) {
      const name = partitionQueueName('customers', 'audit', p);
      const queue = new Queue(name, { connection: redis, prefix, skipMetasUpdate: true });
      expect(await queue.getJobCounts('completed', 'failed', 'wait', 'active', 'delayed')).toEqual({ completed: 0, failed: 0, wait: 0, active: 0, delayed: 0 });
      await queue.close();
      expect(await redis.hget(`${prefix}:${name}:meta`, 'opts.maxLenEvents'), `${name} stream cap`).toBe(String(STREAM_CAP));
      // BullMQ trims with MAXLEN ~, which keeps whole stream nodes: the cap plus at most one node.
      expect(await redis.xlen(`${prefix}:${name}:events`), `${name} event stream`).toBeLessThanOrEqual(STREAM_CAP + nodeEntries);
    }
    expect(await redis.hget(`${prefix}:${deadLetterQueueName('customers', 'audit')}:meta`, 'opts.maxLenEvents')).toBe(String(STREAM_CAP));
    expect(await jobKeys()).toEqual([]);

    expect(await deliverer.stop()).toBe(0);
    expect(await reader.stop()).toBe(0);
    await deleteRedisPrefix(prefix);
  }, 60_000);
});
