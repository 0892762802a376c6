import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, freePort, readJsonLines, startAgent, tempWorkspace, uniquePrefix, waitFor, writeFile, type FerryProcess } from '../support/agent-process.js';
import { customersPipelineConfig, dropCsv, kundenRows, perKeyOrderViolations } from '../support/legacy-csv.js';

/**
 * Scale-out (PRODUCT.md): sink workers may run in other processes against the
 * same Redis (`ferry run --role deliver`). Each partition must still be worked
 * by one worker at a time across all of them, or two processes could write
 * consecutive batches of one key concurrently and reorder it at the sink.
 */

const running: FerryProcess[] = [];
const prefixes: string[] = [];
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  for (const prefix of prefixes) await deleteRedisPrefix(prefix);
});

/** Events the `audit` file sink delivered in this process, from its /metrics. */
async function deliveredBy(admin: string): Promise<number> {
  const res = await fetch(`http://${admin}/metrics`);
  expect(res.status).toBe(200);
  const line = (await res.text())
    .split('\n')
    .find((l) => l.startsWith('component_sent_events_total{') && l.includes('component_kind="sink"') && l.includes('component_id="audit"'));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('two delivering agents on one queue', () => {
  it('share the partitions and keep per-key order: a partition is worked by one process at a time', async () => {
    const dir = tempWorkspace('two-deliverers');
    const prefix = uniquePrefix('two-deliverers');
    prefixes.push(prefix);
    // Small batches and several partitions: many consecutive jobs of one key for the two processes to race on.
    const delivery = { partitions: 4, batch: { maxEvents: 100, maxWaitMs: 20 } };
    const readerConfig = customersPipelineConfig(dir, { id: 'reader', logLevel: 'warn', queue: { prefix }, minAgeMs: 200, delivery });
    const admins = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    // The same pipeline and sink (so the same queues and the same sink file), another agent id, admin port and data directory.
    const deliverConfigs = admins.map((admin, i) =>
      writeFile(
        join(dir, `ferry-deliver-${i}.yaml`),
        readFileSync(readerConfig, 'utf8')
          .replace('id: reader', `id: deliverer-${i}\n  admin: { listen: "${admin}" }`)
          .replace('dataDir: ./data', `dataDir: ./data-deliver-${i}`),
      ),
    );
    const deliverers = deliverConfigs.map((config) => startAgent(config, { role: 'deliver' }));
    running.push(...deliverers);
    const rows = 30_000;
    dropCsv(join(dir, 'inbox/kunden_scale_out.csv'), kundenRows(rows, 200));
    const reader = startAgent(readerConfig, { role: 'read' });
    running.push(reader);

    const out = join(dir, 'out/customers.jsonl');
    await waitFor(`${rows} events at the sink`, () => readJsonLines(out).length >= rows || [reader, ...deliverers].some((p) => p.proc.exitCode !== null), 180_000, 250);
    const counts = await Promise.all(admins.map(deliveredBy));
    for (const p of [reader, ...deliverers]) expect(await p.stop()).toBe(0);

    const events = readJsonLines<{ id: string; subject: string; data: Record<string, string> }>(out);
    expect(events.length).toBe(rows);
    expect(new Set(events.map((e) => e.id)).size).toBe(rows);
    expect(perKeyOrderViolations(events)).toBe(0);
    // Both processes took part, so the order above was kept across them, not by one of them doing all the work.
    expect(counts[0]! + counts[1]!).toBe(rows);
    expect(Math.min(...counts)).toBeGreaterThan(0);
  }, 240_000);
});
