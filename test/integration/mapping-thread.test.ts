import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMappings } from '../../agent/mapping/load-mappings.js';
import type { MappingSet } from '../../agent/mapping/types.js';
import { mapBatch } from '../../agent/pipeline/map-records.js';
import { mappedIds, mappedLines } from '../../agent/pipeline/mapped-batch.js';
import type { SourceRecord } from '../../agent/plugin/source.js';
import type { MappingThread as MappingThreadClass } from '../../agent/pipeline/mapping-thread.js';
import { createLogger } from '../../agent/telemetry/logger.js';

// The thread runs compiled code (its entry is the .js file next to it), as in the agent.
const compiled: string = '../../dist/agent/pipeline/mapping-thread.js';
const { MappingThread } = (await import(compiled)) as { MappingThread: typeof MappingThreadClass };

/**
 * The mapping thread against the inline mapping it replaces: the same
 * batches must give byte-identical lines, the same ids and partitions, the
 * same dead-letter entries and filter counts, in the same order, also with
 * several batches in flight; and a thread that is gone must say so instead
 * of leaving the reader waiting.
 */

const REPO = join(import.meta.dirname, '..', '..');
const ctx = { pipeline: 'customers', agentId: 'test', baseDir: REPO };
const files = ['mappings/customers.yaml'];
let inline: MappingSet;
let thread: MappingThreadClass;

beforeAll(async () => {
  inline = await loadMappings(files, ctx);
  thread = await MappingThread.start({ ...ctx, files, partitions: 4 }, createLogger('silent'));
});
afterAll(() => thread.close());

function records(batch: number, n: number): SourceRecord[] {
  const origin = { kind: 'file', name: `kunden_${batch}.csv` } as const;
  return Array.from({ length: n }, (_, i) => {
    const k = batch * n + i;
    const record: SourceRecord = {
      origin,
      op: 'c',
      data: {
        KUNDE_NR: `K${k}`,
        VORNAME: ' Jürgen ',
        NACHNAME: `Straßer ${k}`,
        EMAIL: `K${k}@Example.DE`,
        // Every 7th row breaks its contract (no such date), every 11th is filtered (STATUS D).
        SALDO: `${k},50`,
        KUNDE_SEIT: k % 7 === 3 ? '31.02.2024' : '01.03.2024',
        STATUS: k % 11 === 5 ? 'D' : k % 2 ? 'A' : 'X',
      },
      changeId: `hash${batch}:${i}`,
      time: '2024-03-01T00:00:00.000Z',
      location: `inbox/kunden_${batch}.csv:${i + 2}`,
      position: `kunden_${batch}.csv#${i + 2}`,
    };
    if (k % 13 === 4) {
      record.invalid = 'Invalid Record Length: columns length is 7, got 6 on line 9';
      record.data = { _raw: 'K1;a;b;c;d;e' };
    }
    return record;
  });
}

describe('mapping thread', () => {
  it('gives exactly what inline mapping gives, batch by batch, with several batches in flight', async () => {
    const batches = Array.from({ length: 6 }, (_, b) => records(b, 200));
    const answers = await Promise.all(batches.map((r) => thread.map(r)));
    batches.forEach((r, b) => {
      const expected = mapBatch(r, inline, ctx.pipeline, 4);
      const got = answers[b]!;
      expect(got.count).toBe(expected.count);
      expect(mappedLines(got)).toEqual(mappedLines(expected));
      expect(Buffer.from(got.lines).equals(Buffer.from(expected.lines))).toBe(true);
      expect(mappedIds(got)).toEqual(mappedIds(expected));
      expect([...got.partitions]).toEqual([...expected.partitions]);
      expect(got.filtered).toEqual(expected.filtered);
      expect(got.dead.map(({ at: _at, ...d }) => d)).toEqual(expected.dead.map(({ at: _at, ...d }) => d));
    });
    const all = answers.flatMap((a) => a.dead);
    expect(all.some((d) => d.code === 'FERRY_RECORD_MALFORMED')).toBe(true);
    expect(all.some((d) => d.code === 'FERRY_CONTRACT_VIOLATION')).toBe(true);
    expect(answers.reduce((n, a) => n + (a.filtered['mappings/customers.yaml'] ?? 0), 0)).toBeGreaterThan(0);
  });

  it('rejects what it was given, and anything after, once the thread is gone', async () => {
    const doomed = await MappingThread.start({ ...ctx, files, partitions: 4 }, createLogger('silent'));
    const pending = doomed.map(records(0, 50_000));
    await doomed.close();
    await expect(pending).rejects.toThrow();
    await expect(doomed.map(records(1, 1))).rejects.toThrow(/closed|exited/);
  });
});
