import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { SourceRecord } from '../plugin/source.js';
import type { MappedBatch } from './mapped-batch.js';
import { packedTransferables, packRecords, type PackedRecords } from './record-transport.js';

/** What the mapping thread starts from (structured-cloned). */
export interface MappingThreadData {
  pipeline: string;
  agentId: string;
  /** The pipeline's mapping files and the folder they are relative to. */
  files: readonly string[];
  baseDir: string;
  partitions: number;
}

export type ToMappingThread = { id: number; records: PackedRecords };
export type FromMappingThread = { type: 'ready' } | { type: 'failed'; message: string } | { type: 'mapped'; id: number; batch: MappedBatch };

/**
 * The thread's heap: a few source batches in flight. Mapping makes much
 * short-lived garbage, so the young generation is the larger share; the cap
 * keeps the agent inside its 256 MiB budget.
 */
const THREAD_LIMITS = { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 12 };

/**
 * A pipeline's mapping (mapping, contract checks, event ids, JSON
 * serialization), run on a `worker_threads` thread of its own: on the
 * reading thread it cost as much as reading itself, so with it here the
 * source reads while the previous batches are mapped. Batches are mapped in
 * the order they are given and answered in that order; the reader applies
 * them to the queue in source order.
 *
 * Records cross threads packed (see PackedRecords): their strings joined in
 * one, the rest structured-cloned, so numbers, bigints, Dates, null and
 * plain objects and arrays arrive as they were; Buffers arrive as
 * Uint8Arrays and are turned back into Buffers (top-level values) by the
 * thread. The answer comes back as byte blocks (see MappedBatch),
 * transferred rather than copied.
 */
export class MappingThread {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (b: MappedBatch) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    // It only works when asked; it must never keep a stopping agent alive.
    worker.unref();
    worker.on('message', (m: FromMappingThread) => {
      if (m.type !== 'mapped') return;
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      w?.resolve(m.batch);
    });
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => this.fail(new Error(`the mapping thread exited (${code})`)));
  }

  /** Starts the thread; resolves once its mappings are loaded. */
  static async start(data: MappingThreadData, logger: Logger): Promise<MappingThread> {
    const worker = new Worker(new URL('./mapping-thread-main.js', import.meta.url), { workerData: data, resourceLimits: THREAD_LIMITS });
    const started = new Promise<void>((resolve, reject) => {
      const onMessage = (m: FromMappingThread): void => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'failed') reject(new Error(`the mapping thread could not load the mappings: ${m.message}`));
        else return;
        worker.off('message', onMessage);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the mapping thread exited (${code}) while starting`)));
    });
    try {
      await started;
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    logger.debug({ pipeline: data.pipeline }, 'mapping thread running');
    return new MappingThread(worker);
  }

  /** Maps one source batch on the thread. Rejects if the thread dies (the reader then reopens from its last position). */
  map(records: readonly SourceRecord[]): Promise<MappedBatch> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const answer = new Promise<MappedBatch>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    const packed = packRecords(records);
    this.worker.postMessage({ id, records: packed } satisfies ToMappingThread, packedTransferables(packed));
    return answer;
  }

  async close(): Promise<void> {
    this.failure ??= new Error('the mapping thread is closed');
    await this.worker.terminate();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.values()) w.reject(this.failure);
    this.waiting.clear();
  }
}
