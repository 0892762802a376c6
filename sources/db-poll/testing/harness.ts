import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Value } from '@sinclair/typebox/value';
import { pino, type Logger } from 'pino';
import { MemoryStateStore } from '../../../agent/checkpoint/state-store.js';
import type { Checkpoint, SourceBatch, SourceContext, SourceRecord } from '../../../agent/plugin/source.js';
import { DbPollConfigSchema, type DbPollConfig } from '../config.js';
import type { Dialect } from '../dialects/dialect.js';
import { dbPollSource } from '../index.js';
import type { PollContext } from '../poll-context.js';
import type { DbPollSource } from '../source.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** A logger whose JSON lines the test can read back. */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/** A db-poll source built the way the runtime builds it: schema defaults applied, then `create`. */
export function makeSource(config: Partial<DbPollConfig> & Pick<DbPollConfig, 'connection' | 'views'>): DbPollSource {
  const full = Value.Default(DbPollConfigSchema, { type: 'db-poll', ...config }) as DbPollConfig;
  return dbPollSource.create(full, { configDir: process.cwd() }) as DbPollSource;
}

/** What one poll needs, for tests that drive a poll function (pollIncremental, pollDiff) on a dialect directly. */
export function pollContext(dialect: Dialect, logger: Logger, opts: { pageSize?: number; queryTimeoutMs?: number; pollTime?: string } = {}): PollContext {
  return {
    dialect,
    logger,
    pageSize: opts.pageSize ?? 1000,
    queryTimeoutMs: opts.queryTimeoutMs ?? 30_000,
    pollTime: opts.pollTime ?? new Date().toISOString(),
    run: (query) => query,
  };
}

const tempDirs: string[] = [];

/** Removes the data directories `sourceContext` created. */
export async function removeTempDirs(): Promise<void> {
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
}

export async function sourceContext(logger: Logger, dataDir?: string): Promise<SourceContext> {
  if (dataDir === undefined) {
    dataDir = await mkdtemp(join(tmpdir(), 'ferry-db-poll-'));
    tempDirs.push(dataDir);
  }
  return {
    pipeline: 'test-db-poll',
    agentId: 'test-agent',
    dataDir,
    state: new MemoryStateStore(),
    logger,
  };
}

/**
 * Plays the runtime for one poll: pulls every batch, "makes it durable"
 * (hands it to `onRecords`) and commits each checkpoint in order. Returns the
 * last checkpoint (or `from` when nothing was yielded).
 */
export async function pollAndCommit(source: DbPollSource, from: Checkpoint | undefined, onRecords: (records: SourceRecord[]) => void): Promise<Checkpoint | undefined> {
  let checkpoint = from;
  for await (const batch of source.poll(new AbortController().signal)) {
    onRecords(batch.records);
    checkpoint = batch.checkpoint;
    await source.commit(checkpoint);
  }
  return checkpoint;
}

/** Pulls batches from `read` until `enough` says stop (or the deadline passes), committing each. */
export async function readUntil(
  source: DbPollSource,
  enough: (batches: SourceBatch[]) => boolean,
  deadlineMs: number,
): Promise<{ batches: SourceBatch[]; stoppedInMs: number }> {
  const abort = new AbortController();
  const batches: SourceBatch[] = [];
  const timer = setTimeout(() => abort.abort(), deadlineMs);
  // The check also runs on a clock, so a condition met between two polls ends the read promptly.
  const poller = setInterval(() => {
    if (enough(batches)) abort.abort();
  }, 50);
  const abortedAt = { t: 0 };
  abort.signal.addEventListener('abort', () => (abortedAt.t = Date.now()));
  try {
    for await (const batch of source.read(abort.signal)) {
      batches.push(batch);
      await source.commit(batch.checkpoint);
      if (enough(batches)) abort.abort();
    }
  } finally {
    clearTimeout(timer);
    clearInterval(poller);
  }
  return { batches, stoppedInMs: Date.now() - abortedAt.t };
}

/**
 * Peak RSS (sampled every 20 ms) and peak *live* heap (sampled after a full
 * GC every 250 ms) while `fn` runs, as growth over the start. Live heap, not
 * `heapUsed` alone: how much garbage V8 lets pile up between collections
 * depends on timing and load, what the source retains does not.
 *
 * `sampledHeapGrowthMiB` is the peak over the samples `fn` takes itself
 * (`sample()`, e.g. once per batch) only: taken at the same points of two
 * runs, those peaks are comparable whatever the runs' durations, where a
 * clock sample lands anywhere in a page.
 */
export async function measureMemory<T>(
  fn: (sample: () => void) => Promise<T>,
): Promise<{ result: T; rssGrowthMiB: number; heapGrowthMiB: number; sampledHeapGrowthMiB: number; peakRssMiB: number }> {
  const liveHeap = (): number => {
    collectGarbage();
    return process.memoryUsage().heapUsed;
  };
  const startHeap = liveHeap();
  const start = process.memoryUsage();
  let peakRss = start.rss;
  let peakHeap = startHeap;
  let peakSampled = startHeap;
  const sample = (): void => {
    peakSampled = Math.max(peakSampled, liveHeap());
    peakHeap = Math.max(peakHeap, peakSampled);
  };
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 20);
  const heapSampler = setInterval(() => {
    peakHeap = Math.max(peakHeap, liveHeap());
  }, 250);
  try {
    const result = await fn(sample);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    const mib = (n: number): number => Math.round((n / 2 ** 20) * 10) / 10;
    return { result, rssGrowthMiB: mib(peakRss - start.rss), heapGrowthMiB: mib(peakHeap - startHeap), sampledHeapGrowthMiB: mib(peakSampled - startHeap), peakRssMiB: mib(peakRss) };
  } finally {
    clearInterval(sampler);
    clearInterval(heapSampler);
  }
}
