import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FerryEvent } from '../../agent/event/cloud-event.js';
import { DeadLetterQueue } from '../../agent/queue/dead-letter-queue.js';
import { deleteRedisPrefix, readJsonLines, runFerry, startAgent, tempWorkspace, uniquePrefix, waitFor, type FerryProcess } from '../support/agent-process.js';
import { AUDIT_SINK, customersPipelineConfig, dropCsv } from '../support/legacy-csv.js';

/**
 * The sink side of `ferry dlq`, with the real agent and the real CLI: a batch
 * that ran out of retries against a failing webhook waits in the sink's
 * dead-letter queue; `replay` delivers the very same events once the target
 * is healthy, and `purge` throws entries away.
 */

/** One request as the webhook saw it. */
interface Request {
  events: FerryEvent[];
  status: number;
}
const requests: Request[] = [];
let healthy = false;
let server: Server;
let url: string;
const redis = new Redis(6379, '127.0.0.1', { maxRetriesPerRequest: null });
let agent: FerryProcess | undefined;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST') return res.writeHead(204).end();
      const status = healthy ? 200 : 500;
      requests.push({ events: JSON.parse(Buffer.concat(chunks).toString('utf8')) as FerryEvent[], status });
      res.writeHead(status).end(healthy ? '' : 'hub: database unavailable');
    });
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/events`;
});

afterAll(async () => {
  if (agent && agent.proc.exitCode === null) await agent.kill();
  server.close();
  redis.disconnect();
});

function rows(keys: string[]): string[] {
  return keys.map((k, i) => `${k};Jürgen;Straße ${i};${k.toLowerCase()}@example.de;${i + 1},00;15.01.2024;A`);
}

const ids = (events: readonly { id: string }[]) => events.map((e) => e.id);

describe('sink dead letters', () => {
  it('replays a batch that ran out of retries against the webhook with the same events once it is healthy, and purges the rest', async () => {
    const dir = tempWorkspace('sinkdlq');
    const prefix = uniquePrefix('sinkdlq');
    // Two attempts a batch: the per-sink circuit opens after five consecutive
    // failures, and from then on a failing target makes batches wait in the
    // queue instead of dead-lettering them. Three batches fail here in a row.
    const config = customersPipelineConfig(dir, {
      id: 'test-sinkdlq',
      logLevel: 'error',
      queue: { prefix },
      minAgeMs: 200,
      // The webhook answers at once; a generous timeout keeps a loaded machine from turning its 500 into a timeout.
      sinks: [{ name: 'hub', type: 'webhook', url, timeoutMs: 10_000 }, AUDIT_SINK],
      delivery: { partitions: 1, batch: { maxEvents: 500, maxWaitMs: 50 }, retry: { attempts: 2, initialMs: 20, maxMs: 50 } },
    });
    const audit = join(dir, 'out/customers.jsonl');
    const hubDlq = new DeadLetterQueue(redis, prefix, 'customers', 'hub');
    const listHub = async () => {
      const r = await runFerry(['dlq', 'list', '--config', config, '--sink', 'hub', '--json']);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; code: string; attempts: number; reason: string; events: FerryEvent[] });
    };

    try {
      agent = startAgent(config);
      dropCsv(join(dir, 'inbox/kunden_a.csv'), rows(['A1', 'A2', 'A3', 'A4', 'A5', 'A6']));
      await waitFor('the failed batch in the hub dead-letter queue', async () => (await hubDlq.depth()) === 1 || agent!.proc.exitCode !== null, 120_000);
      await waitFor('the batch at the healthy audit sink', () => readJsonLines(audit).length >= 6, 30_000);

      const [entry, ...more] = await listHub();
      expect(more).toEqual([]);
      expect(entry).toMatchObject({ code: 'FERRY_SINK_RETRIES_EXHAUSTED', attempts: 2 });
      expect(entry!.reason).toMatch(/500/);
      const original = readJsonLines<FerryEvent>(audit);
      expect(ids(entry!.events)).toEqual(ids(original));
      // The webhook saw exactly those events, twice, and took none of them.
      expect(requests.map((r) => [r.status, ids(r.events)])).toEqual([
        [500, ids(original)],
        [500, ids(original)],
      ]);

      healthy = true;
      const replay = await runFerry(['dlq', 'replay', '--config', config, '--sink', 'hub']);
      expect(replay.code, replay.stderr).toBe(0);
      expect(replay.stderr).toMatch(/replayed 1 entry/);
      await waitFor('the replayed batch at the webhook', () => requests.some((r) => r.status === 200), 30_000);
      const accepted = requests.filter((r) => r.status === 200).flatMap((r) => r.events);
      // The same events, not new ones: same ids, same content as the audit sink got.
      expect(accepted).toEqual(original);
      expect(await listHub()).toEqual([]);
      // Replay goes to the sink that failed only; the audit sink already had them.
      expect(readJsonLines(audit)).toHaveLength(6);

      healthy = false;
      dropCsv(join(dir, 'inbox/kunden_b.csv'), rows(['B1', 'B2']));
      await waitFor('a second dead-lettered batch', async () => (await hubDlq.depth()) === 1, 120_000);
      dropCsv(join(dir, 'inbox/kunden_c.csv'), rows(['C1', 'C2', 'C3']));
      await waitFor('a third dead-lettered batch', async () => (await hubDlq.depth()) === 2, 120_000);
      const purge = await runFerry(['dlq', 'purge', '--config', config, '--sink', 'hub', '--yes']);
      expect(purge.code, purge.stderr).toBe(0);
      expect(purge.stderr).toMatch(/purged 2 entries/);
      expect(await listHub()).toEqual([]);
      healthy = true;
      // Purged means gone: nothing of it reaches the target later.
      await new Promise((r) => setTimeout(r, 500));
      expect(requests.filter((r) => r.status === 200).flatMap((r) => ids(r.events))).toEqual(ids(original));

      expect(await agent.stop()).toBe(0);
    } finally {
      await hubDlq.close();
      await deleteRedisPrefix(prefix);
    }
  }, 480_000); // the waits (120 + 30 + 30 + 120 + 120 s) and five CLI runs
});
