/**
 * The delivery thread's entry (see `delivery-thread.ts`): opens every sink
 * and runs its partition workers on a Redis connection of its own; metrics
 * and circuit changes go to the main thread as messages; `close` drains.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLocated, rethrowLocated } from '../config/plugin-problems.js';
import type { FerryConfig } from '../config/schema.js';
import { ConfigError, FerryError } from '../errors/index.js';
import type { Sink } from '../plugin/sink.js';
import { DeadLetterQueue } from '../queue/dead-letter-queue.js';
import { DeliveryWorkers, type DeliveryTelemetry } from '../queue/delivery-worker.js';
import { connectRedis, waitReady } from '../queue/redis-connection.js';
import { findSink } from '../sink-registry.js';
import { createLogger } from '../telemetry/logger.js';
import type { DeliveryThreadData, ToDeliveryThread, FromDeliveryThread, SerializedError } from './delivery-thread.js';

const port = parentPort!;
const { config, url, prefix, secrets } = workerData as DeliveryThreadData;
const logger = createLogger(config.agent.logLevel, 2, secrets);
const post = (m: FromDeliveryThread): void => port.postMessage(m);

const telemetry: DeliveryTelemetry = {
  sinkReceived: (...args) => post({ type: 'metric', name: 'sinkReceived', args }),
  sinkDelivered: (...args) => post({ type: 'metric', name: 'sinkDelivered', args }),
  error: (...args) => post({ type: 'metric', name: 'error', args }),
  deadLetter: (...args) => post({ type: 'metric', name: 'deadLetter', args }),
  circuitState: { set: (labels, value) => post({ type: 'circuit', pipeline: labels.pipeline, sink: labels.sink, value }) },
};

const redis = connectRedis(url, `ferry:${config.agent.id}:deliver`);
redis.on('error', (err) => logger.debug({ err: err.message }, 'redis connection error'));
const running: Array<{ name: string; sink: Sink; workers: DeliveryWorkers; deadLetters: DeadLetterQueue }> = [];

async function start(cfg: FerryConfig): Promise<void> {
  await waitReady(redis, url);
  for (const [i, p] of cfg.pipelines.entries()) {
    const plog = logger.child({ pipeline: p.name });
    for (const [j, entry] of p.sinks.entries()) {
      const plugin = findSink(entry.type);
      if (!plugin) throw new FerryError('FERRY_PLUGIN_UNKNOWN', `unknown sink type "${entry.type}"`, { where: `pipelines.${p.name}.sinks.${entry.name}` });
      // A sink names its config mistakes relative to its entry: say which file, line and pipeline.
      const at = ['pipelines', i, 'sinks', j];
      const sink = createLocated(cfg, at, () => plugin.create(entry as never, { configDir: cfg.dir }));
      await sink.open({ pipeline: p.name, sink: entry.name, agentId: cfg.agent.id, dataDir: cfg.agent.dataDir, logger: plog.child({ sink: entry.name }) }).catch(rethrowLocated(cfg, at));
      const deadLetters = new DeadLetterQueue(redis, prefix, p.name, entry.name);
      const workers = new DeliveryWorkers({ connection: redis, prefix, pipeline: p.name, sinkName: entry.name, sink, delivery: p.delivery, deadLetters, telemetry, logger: plog });
      running.push({ name: entry.name, sink, workers, deadLetters });
      workers.start();
    }
  }
}

/** Same order as in one thread: workers stop (running writes finish), then sinks close, then Redis. */
async function close(deadlineMs: number): Promise<void> {
  await Promise.all(running.map((r) => r.workers.close(deadlineMs)));
  for (const r of running) {
    await r.sink.close().catch((err) => logger.warn({ err, sink: r.name }, 'closing the sink failed'));
    await r.deadLetters.close().catch(() => {});
  }
  await redis.quit().catch(() => redis.disconnect());
}

port.on('message', (m: ToDeliveryThread) => {
  if (m.type !== 'close') return;
  void close(m.deadlineMs).then(
    () => {
      post({ type: 'closed' });
      port.close();
    },
    (err: unknown) => post({ type: 'failed', error: serializeError(err) }),
  );
});

start(config).then(
  () => post({ type: 'ready' }),
  (err: unknown) => post({ type: 'failed', error: serializeError(err) }),
);

function serializeError(err: unknown): SerializedError {
  // Every problem of a config error, so the main thread reports them as the loader would.
  if (err instanceof ConfigError) return { code: err.code, message: err.message, problems: err.problems };
  if (err instanceof FerryError) return { code: err.code, message: err.message, ...(err.where ? { where: err.where } : {}), ...(err.fix ? { fix: err.fix } : {}) };
  return { message: err instanceof Error ? err.message : String(err) };
}
