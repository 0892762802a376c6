import { truncate } from '../format.js';
import type { FerryConfig, PipelineConfig } from '../../config/schema.js';
import { loadConfig, secretValues } from '../../config/load-config.js';
import { FerryError } from '../../errors/index.js';
import type { FerryEvent } from '../../event/cloud-event.js';
import { loadMappings } from '../../mapping/load-mappings.js';
import { DeadLetterQueue, MAPPING_DLQ, type StoredDeadLetter } from '../../queue/dead-letter-queue.js';
import { violationReason } from '../../pipeline/map-records.js';
import { enqueueForSinks } from '../../queue/replay-enqueue.js';
import { openQueueConnection } from '../../runtime/queue-connection.js';
import { createLogger } from '../../telemetry/logger.js';

interface DlqOptions {
  verb: 'list' | 'show' | 'replay' | 'purge';
  config: string;
  pipeline?: string;
  sink?: string;
  json?: boolean;
  yes?: boolean;
  args: string[];
}

/** `ferry dlq list|show|replay|purge`: works the dead-letter queues of every pipeline in the config. */
export async function run(opts: DlqOptions): Promise<number> {
  const config = await loadConfig(opts.config);
  const logger = createLogger('warn', 2, secretValues(config));
  const conn = await openQueueConnection(config, logger, 'ferry:dlq');
  const queues = selectQueues(config, opts).map((q) => ({ ...q, dlq: new DeadLetterQueue(conn.redis, conn.prefix, q.pipeline.name, q.sink) }));
  try {
    switch (opts.verb) {
      case 'list':
        return await list(queues, opts);
      case 'show':
        return await show(queues, opts.args[0]!);
      case 'replay':
        return await replay(queues, opts, config, conn.redis, conn.prefix);
      case 'purge':
        return await purge(queues, opts);
    }
  } finally {
    await Promise.all(queues.map((q) => q.dlq.close()));
    // Stops the embedded redis-server only if this command started it (no agent running).
    await conn.close();
  }
}

type Selected = { pipeline: PipelineConfig; sink: string; dlq: DeadLetterQueue };

function selectQueues(config: FerryConfig, opts: DlqOptions): Array<{ pipeline: PipelineConfig; sink: string }> {
  const wantSink = opts.sink === 'mapping' ? MAPPING_DLQ : opts.sink;
  const pipelines = config.pipelines.filter((p) => !opts.pipeline || p.name === opts.pipeline);
  if (opts.pipeline && pipelines.length === 0) {
    throw new FerryError('FERRY_USAGE', `no pipeline named "${opts.pipeline}" in ${config.file}`, { fix: `Use one of: ${config.pipelines.map((p) => p.name).join(', ')}.` });
  }
  const out = pipelines.flatMap((p) => [MAPPING_DLQ, ...p.sinks.map((s) => s.name)].filter((s) => !wantSink || s === wantSink).map((sink) => ({ pipeline: p, sink })));
  if (wantSink && out.length === 0) throw new FerryError('FERRY_USAGE', `no sink named "${opts.sink}"`, { fix: 'Use a sink name from the config, or "mapping" for records that broke their contract.' });
  return out;
}

async function entriesOf(queues: Selected[]): Promise<Array<{ q: Selected; entry: StoredDeadLetter }>> {
  const out: Array<{ q: Selected; entry: StoredDeadLetter }> = [];
  for (const q of queues) for (const entry of await q.dlq.list()) out.push({ q, entry });
  return out;
}

async function list(queues: Selected[], opts: DlqOptions): Promise<number> {
  const entries = await entriesOf(queues);
  for (const { entry } of entries) {
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(entry)}\n`);
    } else {
      // A sink's entry holds events; a mapping entry holds the source record they could not be made from.
      const n = entry.events?.length;
      const holds = n === undefined ? '1 record' : `${n} event${n === 1 ? '' : 's'}`;
      process.stdout.write(`${entry.id}  ${entry.pipeline}/${displaySink(entry.sink)}  ${entry.code}  ${holds}  ${entry.location ?? '-'}  ${truncate(entry.reason, 160)}\n`);
    }
  }
  if (!opts.json) process.stderr.write(`${entries.length} dead-letter entr${entries.length === 1 ? 'y' : 'ies'}\n`);
  return 0;
}

async function show(queues: Selected[], id: string): Promise<number> {
  for (const q of queues) {
    const entry = await q.dlq.get(id);
    if (entry) {
      process.stdout.write(`${JSON.stringify(entry, null, 2)}\n`);
      return 0;
    }
  }
  throw new FerryError('FERRY_DLQ_NOT_FOUND', `no dead-letter entry with id ${id}`);
}

async function replay(queues: Selected[], opts: DlqOptions, config: FerryConfig, redis: import('ioredis').Redis, prefix: string): Promise<number> {
  const entries = (await entriesOf(queues)).filter(({ entry }) => opts.args.length === 0 || opts.args.includes(entry.id));
  if (opts.args.length > 0 && entries.length < opts.args.length) {
    const missing = opts.args.filter((id) => !entries.some((e) => e.entry.id === id));
    throw new FerryError('FERRY_DLQ_NOT_FOUND', `no dead-letter entry with id ${missing.join(', ')}`);
  }
  const mappingsByPipeline = new Map<string, Awaited<ReturnType<typeof loadMappings>>>();
  let replayed = 0;
  let stillFailing = 0;
  for (const { q, entry } of entries) {
    const p = q.pipeline;
    let events: FerryEvent[];
    let sinks: string[];
    if (entry.events && entry.events.length > 0) {
      events = entry.events;
      sinks = [entry.sink];
    } else if (entry.record) {
      let mappings = mappingsByPipeline.get(p.name);
      if (!mappings) {
        mappings = await loadMappings(p.mappings, { pipeline: p.name, agentId: config.agent.id, baseDir: config.dir });
        mappingsByPipeline.set(p.name, mappings);
      }
      const outcomes = entry.record.invalid !== undefined ? [] : mappings.apply(entry.record);
      const failures = outcomes.filter((o) => o.kind === 'violation');
      if (entry.record.invalid !== undefined || failures.length > 0) {
        stillFailing++;
        const reason = entry.record.invalid ?? failures.map((f) => (f.kind === 'violation' ? violationReason(f.violations) : '')).join('; ');
        process.stderr.write(`still failing: ${entry.id} ${entry.location ?? ''} ${truncate(reason, 200)}\n`);
        continue;
      }
      events = outcomes.flatMap((o) => (o.kind === 'event' ? [o.event] : []));
      sinks = p.sinks.map((s) => s.name);
    } else {
      continue;
    }
    await enqueueForSinks(redis, prefix, p.name, sinks, p.delivery, events);
    await q.dlq.remove(entry.id);
    replayed++;
  }
  process.stderr.write(`replayed ${replayed} entr${replayed === 1 ? 'y' : 'ies'}${stillFailing ? `; ${stillFailing} still fail and stay in the dead-letter queue` : ''}\n`);
  return stillFailing > 0 ? 1 : 0;
}

async function purge(queues: Selected[], opts: DlqOptions): Promise<number> {
  if (opts.args.length === 0 && !opts.yes) {
    throw new FerryError('FERRY_USAGE', 'purging every matching entry needs --yes', { fix: 'Add --yes, or pass the ids to purge.' });
  }
  const entries = (await entriesOf(queues)).filter(({ entry }) => opts.args.length === 0 || opts.args.includes(entry.id));
  for (const { q, entry } of entries) await q.dlq.remove(entry.id);
  process.stderr.write(`purged ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}\n`);
  return 0;
}

function displaySink(sink: string): string {
  return sink === MAPPING_DLQ ? 'mapping' : sink;
}
