/**
 * bench/mapping-thread: what one record costs on the mapping thread, the
 * critical path of csv-drop, in-process and single-threaded (no contention,
 * so repeatable on a noisy machine): the records' trip across threads
 * (pack + structured clone out, clone in + unpack; `v8.serialize` stands in
 * for `postMessage`, which uses the same serializer) and `mapBatch` (mapping,
 * contract, event id, JSON line into the byte block), beside the floor of
 * the same work: bare `JSON.stringify` + `Buffer.write` + sha256 of the
 * events it produced. Records are the csv-drop bench's rows through
 * `mappings/customers.yaml`.
 *
 *   npm run build && node dist/bench/mapping-thread/run.js [--batches 3000] [--batch-size 200]
 */
import { hash } from 'node:crypto';
import { resolve } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { loadMappings } from '../../agent/mapping/load-mappings.js';
import { mapBatch } from '../../agent/pipeline/map-records.js';
import { mappedLines } from '../../agent/pipeline/mapped-batch.js';
import { packRecords, unpackRecords } from '../../agent/pipeline/record-transport.js';
import type { SourceRecord } from '../../agent/plugin/source.js';

const REPO = resolve(import.meta.dirname, '../../..');
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const BATCHES = Number(args.get('batches') ?? 3000);
const SIZE = Number(args.get('batch-size') ?? 200);

const mappings = await loadMappings(['customers.yaml'], { pipeline: 'customers', agentId: 'bench', baseDir: resolve(REPO, 'mappings') });
const origin = { kind: 'file', name: 'kunden_bench.csv' } as const;
const batch = (b: number): SourceRecord[] =>
  Array.from({ length: SIZE }, (_, j) => {
    const i = b * SIZE + j;
    return {
      origin,
      op: 'c',
      data: { KUNDE_NR: `K${i % 50_000}`, VORNAME: 'Jürgen', NACHNAME: `Straßer ${i}`, EMAIL: `k${i}@example.de`, SALDO: `${i},50`, KUNDE_SEIT: `${String((i % 28) + 1).padStart(2, '0')}.01.2024`, STATUS: i % 2 ? 'A' : 'I' },
      changeId: `${'ab'.repeat(32)}:${i}`,
      time: '2024-01-31T10:00:00.000Z',
      location: `/srv/inbox/kunden_bench.csv:${i}`,
      position: `kunden_bench.csv#${i}`,
    };
  });
const batches = Array.from({ length: 50 }, (_, b) => batch(b));

function measure(n: number): { out: number; into: number; map: number } {
  let out = 0, into = 0, map = 0;
  for (let k = 0; k < n; k++) {
    let t = performance.now();
    const bytes = serialize(packRecords(batches[k % batches.length]!));
    out += performance.now() - t;
    t = performance.now();
    const records = unpackRecords(deserialize(bytes));
    into += performance.now() - t;
    t = performance.now();
    mapBatch(records, mappings, 'customers', 4);
    map += performance.now() - t;
  }
  const per = (ms: number): number => (ms / n / SIZE) * 1000;
  return { out: per(out), into: per(into), map: per(map) };
}

/** The floor of mapBatch's serialization: the same events' JSON, UTF-8 write and sha256, nothing else. */
function floor(n: number): { json: number; write: number; id: number } {
  const events = mappedLines(mapBatch(batches[0]!, mappings, 'customers', 4)).map((l) => JSON.parse(l) as { id: string });
  const buf = Buffer.allocUnsafe(1 << 20);
  let json = 0, write = 0, id = 0;
  for (let k = 0; k < n; k++) {
    let t = performance.now();
    const lines = events.map((e) => JSON.stringify(e));
    json += performance.now() - t;
    t = performance.now();
    let off = 0;
    for (const l of lines) off += buf.write(l, off);
    write += performance.now() - t;
    t = performance.now();
    for (let i = 0; i < events.length; i++) hash('sha256', `customers\0customer\0${'ab'.repeat(32)}:${k * SIZE + i}`, 'binary');
    id += performance.now() - t;
  }
  const per = (ms: number): number => (ms / n / events.length) * 1000;
  return { json: per(json), write: per(write), id: per(id) };
}

measure(Math.min(500, BATCHES)); // warm the JIT
const m = measure(BATCHES);
floor(Math.min(500, BATCHES));
const f = floor(BATCHES);
const us = (v: number): string => `${v.toFixed(2)} µs`;
console.log(`records: ${BATCHES * SIZE} in batches of ${SIZE}, per record:`);
console.log(`  reading thread: pack + clone out         ${us(m.out)}`);
console.log(`  mapping thread: clone in + unpack        ${us(m.into)}`);
console.log(`  mapping thread: mapBatch                 ${us(m.map)}`);
console.log(`  floor inside mapBatch: JSON.stringify ${us(f.json)}, Buffer.write ${us(f.write)}, sha256 id ${us(f.id)} (sum ${us(f.json + f.write + f.id)})`);
console.log(`| ${us(m.out)} | ${us(m.into)} | ${us(m.map)} | ${us(f.json)} | ${us(f.write)} | ${us(f.id)} |`);
