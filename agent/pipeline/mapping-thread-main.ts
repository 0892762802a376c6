/**
 * The mapping thread's entry (see `mapping-thread.ts`): loads the pipeline's
 * mappings and answers each source batch with its `MappedBatch`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadMappings } from '../mapping/load-mappings.js';
import { mapBatch } from './map-records.js';
import { transferables } from './mapped-batch.js';
import { unpackRecords } from './record-transport.js';
import type { FromMappingThread, MappingThreadData, ToMappingThread } from './mapping-thread.js';

const port = parentPort!;
const data = workerData as MappingThreadData;
const post = (m: FromMappingThread, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

try {
  const mappings = await loadMappings(data.files, { pipeline: data.pipeline, agentId: data.agentId, baseDir: data.baseDir });
  port.on('message', ({ id, records: packed }: ToMappingThread) => {
    const records = unpackRecords(packed);
    const batch = mapBatch(records, mappings, data.pipeline, data.partitions);
    post({ type: 'mapped', id, batch }, transferables(batch));
  });
  post({ type: 'ready' });
} catch (err) {
  post({ type: 'failed', message: (err as Error).message });
}
