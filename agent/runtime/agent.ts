import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { RedisStateStore } from '../checkpoint/state-store.js';
import { secretValues } from '../config/load-config.js';
import { createLocated, rethrowLocated } from '../config/plugin-problems.js';
import type { FerryConfig, PipelineConfig } from '../config/schema.js';
import { FerryError } from '../errors/index.js';
import { loadMappings } from '../mapping/load-mappings.js';
import { PipelineReader } from '../pipeline/pipeline-reader.js';
import type { Sink } from '../plugin/sink.js';
import type { Source } from '../plugin/source.js';
import { DeadLetterQueue, MAPPING_DLQ } from '../queue/dead-letter-queue.js';
import { DeliveryWorkers } from '../queue/delivery-worker.js';
import { PartitionedEnqueuer } from '../queue/partitioned-enqueuer.js';
import { openPartitionQueue } from '../queue/partition-queue.js';
import { MappingThread } from '../pipeline/mapping-thread.js';
import { sourceStateKey } from '../queue/queue-names.js';
import { findSink, findSource } from '../registry.js';
import { Telemetry } from '../telemetry/metrics.js';
import { startAdminServer } from './admin-server.js';
import { DeliveryThread } from './delivery-thread.js';
import { openQueueConnection, type QueueConnection } from './queue-connection.js';
import { startStatusReporter, type AgentStatus } from './status-reporter.js';

export type AgentRole = 'all' | 'read' | 'deliver';

interface RunningSink {
  name: string;
  sink: Sink;
  deadLetters: DeadLetterQueue;
  workers: DeliveryWorkers | undefined;
}

interface RunningPipeline {
  config: PipelineConfig;
  sinks: RunningSink[];
  mappingDeadLetters: DeadLetterQueue;
  source: Source | undefined;
  reader: PipelineReader | undefined;
  enqueuer: PartitionedEnqueuer | undefined;
  mappingThread: MappingThread | undefined;
  done: Promise<void> | undefined;
}

/**
 * Runs the agent until SIGTERM/SIGINT (exit 0 after a drain) or until a
 * pipeline fails in a way retrying cannot fix (its error's exit code).
 *
 * Shutdown order (docs/specs/component.md): abort sources → wait for
 * in-flight enqueues and commit positions → close workers (running writes
 * finish) → close sinks → close Redis → stop the embedded redis-server.
 *
 * With role `all`, delivery (every sink's workers) runs in a worker thread
 * (`DeliveryThread`), so reading and delivering use a core each; the order
 * above holds, the thread doing its part (workers, then sinks) when asked.
 */
export async function runAgent(config: FerryConfig, opts: { role: AgentRole; logger: Logger; stopSignal?: AbortSignal }): Promise<number> {
  const { logger, role } = opts;
  const telemetry = new Telemetry();
  const startedAt = new Date().toISOString();
  const stop = new AbortController();
  const onSignal = (sig: string) => {
    if (stop.signal.aborted) return;
    logger.info({ signal: sig }, 'stopping: draining in-flight events');
    stop.abort();
  };
  process.on('SIGTERM', onSignal).on('SIGINT', onSignal);
  if (opts.stopSignal?.aborted) onSignal('stop');
  else opts.stopSignal?.addEventListener('abort', () => onSignal('stop'), { once: true });

  let queue: QueueConnection | undefined;
  let admin: FastifyInstance | undefined;
  let stopStatus: (() => Promise<void>) | undefined;
  const pipelines: RunningPipeline[] = [];
  let delivery: DeliveryThread | undefined;
  let failure: unknown;

  try {
    queue = await openQueueConnection(config, logger, `ferry:${config.agent.id}`);
    const { redis, prefix } = queue;
    if (role === 'all') {
      for (const p of config.pipelines) for (const s of p.sinks) await limitPartitionsToOneWorker(p, s.name);
      delivery = await DeliveryThread.start({ config, url: queue.url, prefix, secrets: secretValues(config) }, telemetry, logger);
      void delivery.failed.catch((err) => {
        failure ??= err;
        stop.abort();
      });
    }
    for (const p of config.pipelines) pipelines.push(await startPipeline(p));

    if (config.agent.admin) {
      admin = await startAdminServer({ listen: config.agent.admin.listen, token: config.agent.admin.token, telemetry, logger, readiness });
    }
    stopStatus = startStatusReporter(redis, prefix, collectStatus);
    logger.info({ agent: config.agent.id, role, pipelines: config.pipelines.map((p) => p.name) }, 'ferry agent running');

    const readersDone = pipelines
      .filter((p) => p.done)
      .map((p) =>
        p.done!.catch((err) => {
          failure ??= err;
          stop.abort();
        }),
      );
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) return resolve();
      stop.signal.addEventListener('abort', () => resolve(), { once: true });
      // Sink workers keep running after a source ends; a read-only agent has nothing left to do.
      if (role === 'read') void Promise.all(readersDone).then(() => resolve());
    });
    stop.abort();
    await Promise.all(readersDone);
  } catch (err) {
    failure = err;
    stop.abort();
  } finally {
    await shutdown();
  }

  if (failure) {
    if (failure instanceof FerryError) {
      logger.error({ code: failure.code, where: failure.where, fix: failure.fix }, failure.message);
      throw failure;
    }
    throw failure;
  }
  logger.info('ferry agent stopped');
  return 0;

  async function startPipeline(p: PipelineConfig): Promise<RunningPipeline> {
    const { redis, prefix } = queue!;
    // A plugin names its config mistakes relative to its entry (`source.tables`, or just `ferry.yaml`): say which file, line and pipeline.
    const at = (...path: (string | number)[]) => ['pipelines', config.pipelines.indexOf(p), ...path];
    const plog = logger.child({ pipeline: p.name });
    const mappings = await loadMappings(p.mappings, { pipeline: p.name, agentId: config.agent.id, baseDir: config.dir });
    const running: RunningPipeline = {
      config: p,
      sinks: [],
      mappingDeadLetters: new DeadLetterQueue(redis, prefix, p.name, MAPPING_DLQ),
      source: undefined,
      reader: undefined,
      enqueuer: undefined,
      mappingThread: undefined,
      done: undefined,
    };
    for (const [j, entry] of p.sinks.entries()) {
      const plugin = findSink(entry.type);
      if (!plugin) throw new FerryError('FERRY_PLUGIN_UNKNOWN', `unknown sink type "${entry.type}"`, { where: `pipelines.${p.name}.sinks.${entry.name}` });
      const sink = createLocated(config, at('sinks', j), () => plugin.create(entry as never, { configDir: config.dir }));
      const deadLetters = new DeadLetterQueue(redis, prefix, p.name, entry.name);
      let workers: DeliveryWorkers | undefined;
      if (role === 'deliver') {
        await sink.open({ pipeline: p.name, sink: entry.name, agentId: config.agent.id, dataDir: config.agent.dataDir, logger: plog.child({ sink: entry.name }) }).catch(rethrowLocated(config, at('sinks', j)));
        workers = new DeliveryWorkers({ connection: redis, prefix, pipeline: p.name, sinkName: entry.name, sink, delivery: p.delivery, deadLetters, telemetry, logger: plog });
        await limitPartitionsToOneWorker(p, entry.name);
        workers.start();
      }
      running.sinks.push({ name: entry.name, sink, deadLetters, workers });
    }
    if (role !== 'deliver') {
      const plugin = findSource(p.source.type);
      if (!plugin) throw new FerryError('FERRY_PLUGIN_UNKNOWN', `unknown source type "${p.source.type}"`, { where: `pipelines.${p.name}.source` });
      const source = createLocated(config, at('source'), () => plugin.create(p.source as never, { configDir: config.dir }));
      let reader: PipelineReader | undefined;
      // With a core to spare, mapping runs beside reading instead of after it.
      const mappingThread =
        availableParallelism() > 1
          ? await MappingThread.start({ pipeline: p.name, agentId: config.agent.id, files: p.mappings, baseDir: config.dir, partitions: p.delivery.partitions }, plog)
          : undefined;
      running.mappingThread = mappingThread;
      const enqueuer = new PartitionedEnqueuer({
        connection: redis,
        prefix,
        pipeline: p.name,
        sinks: p.sinks.map((s) => s.name),
        delivery: p.delivery,
        logger: plog,
        onDurable: (seq) => reader!.onDurable(seq),
      });
      reader = new PipelineReader({
        pipeline: p.name,
        agentId: config.agent.id,
        dataDir: config.agent.dataDir,
        sourceType: p.source.type,
        source,
        partitions: p.delivery.partitions,
        mappings,
        ...(mappingThread ? { mappingThread } : {}),
        enqueuer,
        mappingDeadLetters: running.mappingDeadLetters,
        redis,
        prefix,
        state: new RedisStateStore(redis, sourceStateKey(prefix, p.name)),
        telemetry,
        logger: plog,
      });
      running.source = source;
      running.reader = reader;
      telemetry.sourceLagFrom(p.name, () => (running.reader?.reading ? running.source?.lag?.() : undefined));
      running.enqueuer = enqueuer;
      running.done = reader.run(stop.signal).catch(rethrowLocated(config, at('source')));
    }
    return running;
  }

  /** BullMQ's global concurrency makes a partition one-job-at-a-time across every process that delivers it. */
  async function limitPartitionsToOneWorker(p: PipelineConfig, sink: string): Promise<void> {
    for (let i = 0; i < p.delivery.partitions; i++) {
      const q = openPartitionQueue(queue!.redis, queue!.prefix, p.name, sink, i);
      await q.setGlobalConcurrency(1);
      await q.close();
    }
  }

  function readiness() {
    const checks: Record<string, boolean> = { redis: queue?.redis.status === 'ready' };
    for (const p of pipelines) if (p.reader) checks[`${p.config.name}.source`] = p.reader.reading;
    return { ready: Object.values(checks).every(Boolean) && !stop.signal.aborted, checks };
  }

  async function collectStatus(): Promise<AgentStatus> {
    const counters: Record<string, number> = {};
    for (const metric of (await telemetry.registry.getMetricsAsJSON())) {
      if (!metric.name.startsWith('component_') || String(metric.type) !== 'counter') continue;
      for (const v of metric.values) {
        const l = v.labels as Record<string, string>;
        counters[`${metric.name}{${l.pipeline}/${l.component_kind}/${l.component_id}}`] = (counters[`${metric.name}{${l.pipeline}/${l.component_kind}/${l.component_id}}`] ?? 0) + v.value;
      }
    }
    const lags = new Map<string, Array<{ unit: string; value: number }>>();
    for (const p of pipelines) {
      for (const s of [...p.sinks.map((s) => s.deadLetters), p.mappingDeadLetters]) {
        telemetry.deadLetterDepth.set({ pipeline: p.config.name, sink: s.sink }, await s.depth().catch(() => 0));
      }
      const lag = p.reader?.reading ? p.source?.lag?.() : undefined;
      if (lag?.length) lags.set(p.config.name, lag);
    }
    return {
      agentId: config.agent.id,
      pid: process.pid,
      role,
      startedAt,
      at: new Date().toISOString(),
      pipelines: pipelines.map((p) => ({
        name: p.config.name,
        reading: p.reader?.reading ?? false,
        ...(p.reader?.waitingFor ? { waitingFor: p.reader.waitingFor } : {}),
        position: p.reader?.position,
        ...(lags.has(p.config.name) ? { lag: lags.get(p.config.name) } : {}),
        sinks: p.sinks.map((s) => ({ name: s.name, circuit: s.workers?.circuit ?? delivery?.circuit(p.config.name, s.name) ?? 'n/a' })),
      })),
      counters,
    };
  }

  async function shutdown(): Promise<void> {
    process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
    await stopStatus?.();
    await Promise.allSettled(pipelines.map((p) => p.done));
    // Readers have drained (their run() resolved); close what is left in order.
    for (const p of pipelines) await p.enqueuer?.close().catch((err) => logger.error({ err }, 'closing the enqueuer failed'));
    await Promise.all(pipelines.map((p) => p.mappingThread?.close()));
    await Promise.all(pipelines.flatMap((p) => p.sinks.map((s) => s.workers?.close())));
    await delivery?.close();
    for (const p of pipelines) {
      for (const s of p.sinks) {
        if (s.workers) await s.sink.close().catch((err) => logger.warn({ err, sink: s.name }, 'closing the sink failed'));
        await s.deadLetters.close().catch(() => {});
      }
      await p.mappingDeadLetters.close().catch(() => {});
    }
    await admin?.close().catch(() => {});
    await queue?.close({ stopEmbedded: 'always' });
  }
}
