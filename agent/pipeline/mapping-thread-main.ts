/**
 * The mapping thread's entry (see `mapping-thread.ts`): loads the pipeline's
 * mappings and answers each source batch with its `MappedBatch`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadMappings } from '../mapping/load-mappings.js';
import type { SourceRecord } from '../plugin/source.js';
import { mapBatch } from './map-records.js';
import { transferables } from './mapped-batch.js';
import type { FromMappingThread, MappingThreadData, ToMappingThread } from './mapping-thread.js';

const port = parentPort!;
const data = workerData as MappingThreadData;
const post = (m: FromMappingThread, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

try {
  const mappings = await loadMappings(data.files, { pipeline: data.pipeline, agentId: data.agentId, baseDir: data.baseDir });
  port.on('message', ({ id, records }: ToMappingThread) => {
    for (const r of records) reviveBuffers(r);
    const batch = mapBatch(records, mappings, data.pipeline, data.partitions);
    post({ type: 'mapped', id, batch }, transferables(batch));
  });
  post({ type: 'ready' });
} catch (err) {
  post({ type: 'failed', message: (err as Error).message });
}

/** Structured clone turns a Buffer into a plain Uint8Array; casts and JSON treat the two differently. */
function reviveBuffers(record: SourceRecord): void {
  for (const values of [record.data, record.before]) {
    if (!values) continue;
    for (const k in values) {
      const v = values[k];
      if (v instanceof Uint8Array && !Buffer.isBuffer(v)) values[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
  }
}
