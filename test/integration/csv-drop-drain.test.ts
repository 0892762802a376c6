import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { countLines, deleteRedisPrefix, readJsonLines, startAgent, tempWorkspace, uniquePrefix, waitFor, type FerryProcess } from '../support/agent-process.js';
import { customersPipelineConfig, dropCsv, kundenRows, perKeyOrderViolations } from '../support/legacy-csv.js';

/**
 * SIGTERM in the middle of a large file is the everyday stop (a deploy, a
 * reboot), not a crash: the agent stops reading, queues what it has read,
 * commits that position and exits 0. A clean drain leaves nothing to guess,
 * so the restart must deliver every row exactly once, not merely at least
 * once as after SIGKILL (csv-drop-pipeline.test.ts).
 */

const ROWS = 200_000;

const running: FerryProcess[] = [];
const prefixes: string[] = [];
const clients: Redis[] = [];
// In afterAll, not at the end of the test: a failed run must not leave its queues on the shared Redis.
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  for (const prefix of prefixes) await deleteRedisPrefix(prefix);
  for (const c of clients) c.disconnect();
});

type Event = { id: string; subject: string; data: Record<string, string> };

describe('csv drop: SIGTERM mid-file', () => {
  it('drains with exit 0, commits a mid-file position, and the restart delivers every row exactly once', async () => {
    const dir = tempWorkspace('drain');
    const prefix = uniquePrefix('drain');
    prefixes.push(prefix);
    const config = customersPipelineConfig(dir, {
      id: 'test-drain',
      logLevel: 'info', // the restart's "reading file" line says where it resumed
      queue: { prefix },
      minAgeMs: 300,
      delivery: { partitions: 4, batch: { maxEvents: 500, maxWaitMs: 50 }, retry: { attempts: 8, initialMs: 100, maxMs: 5000 } },
    });
    const out = join(dir, 'out/customers.jsonl');
    const csv = join(dir, 'inbox/kunden_drain.csv');
    dropCsv(csv, kundenRows(ROWS, 5000));

    let agent = startAgent(config);
    running.push(agent);
    // Signalled at a moment that is mid-file by construction: 20,000+ rows of it durable in the queue, not all of
    // it, and delivery under way. The reader runs ahead of delivery, so counting the sink alone could let the file
    // finish first on a slow machine (as csv-drop-pipeline.test.ts's SIGKILL test waits).
    const redis = new Redis(6379, '127.0.0.1');
    clients.push(redis);
    type Stored = { file: string; records: number; done: boolean } | null;
    const stored = async (): Promise<Stored> => JSON.parse((await redis.get(`${prefix}:pipeline:customers:checkpoint`)) ?? 'null') as Stored;
    const atWait = await waitFor('20,000 rows of the file durable, the file not finished, and rows at the sink', async () => {
      if (agent.proc.exitCode !== null) return { stopped: true, records: 0, done: false };
      const s = await stored();
      if (s === null || s.file !== 'kunden_drain.csv') return undefined;
      // Finished before the wait saw it mid-file: say so below rather than wait out the limit.
      if (s.done) return { stopped: false, records: s.records, done: true };
      return s.records >= 20_000 && countLines(out) > 0 ? { stopped: false, records: s.records, done: false } : undefined;
    }, 120_000, 10);
    expect(atWait, agent.stderr()).toMatchObject({ stopped: false, done: false });
    const atSignal = countLines(out);
    expect(await agent.stop(), agent.stderr()).toBe(0);
    expect(agent.stderr()).toContain('ferry agent stopped');

    // Mid-way, proven three ways: the sink had rows when the signal went, the
    // file was not finished (still in the inbox), and the committed position
    // is inside it.
    const afterDrain = readJsonLines<Event>(out);
    expect(atSignal).toBeGreaterThan(0);
    expect(afterDrain.length).toBeLessThan(ROWS);
    expect(existsSync(csv)).toBe(true);
    const checkpoint = await stored();
    expect(checkpoint).toMatchObject({ file: 'kunden_drain.csv', done: false });
    expect(checkpoint!.records).toBeGreaterThan(0);
    expect(checkpoint!.records).toBeLessThan(ROWS);
    // Delivered is at most what was queued: the rest waits in Redis, not lost, for the next run.
    expect(afterDrain.length).toBeLessThanOrEqual(checkpoint!.records);

    agent = startAgent(config);
    running.push(agent);
    await waitFor('every row at the sink after the restart', () => countLines(out) >= ROWS || agent.proc.exitCode !== null, 240_000, 100);
    await waitFor('the file to be archived', () => existsSync(join(dir, 'archive/kunden_drain.csv')) || agent.proc.exitCode !== null, 20_000);
    // A duplicate would arrive after the last new row: give late deliveries a moment to show.
    await new Promise((r) => setTimeout(r, 500));
    expect(await agent.stop(), agent.stderr()).toBe(0);

    const events = readJsonLines<Event>(out);
    const ids = new Set(events.map((e) => e.id));
    expect(ids.size).toBe(ROWS);
    expect(events.length - ids.size, 'duplicates after a clean drain and restart').toBe(0);
    // The position resumed is the one committed: the restart read only the rest of the file.
    expect(agent.stderr()).toMatch(new RegExp(`"resumeAfter":${checkpoint!.records}\\b`));
    // Balances rise with the row number, so per-key order across the stop shows as rising balances.
    expect(perKeyOrderViolations(events)).toBe(0);
  }, 420_000); // at least the sum of the waits above (120 + 240 + 20 s) plus the two drains
});
