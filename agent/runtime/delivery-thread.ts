import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { FerryConfig } from '../config/schema.js';
import type { ErrorCode } from '../errors/codes.js';
import { ConfigError, FerryError, type ConfigProblem } from '../errors/index.js';
import type { DeliveryTelemetry } from '../queue/delivery-worker.js';

/** What the delivery thread starts from (structured-cloned). */
export interface DeliveryThreadData {
  config: FerryConfig;
  /** The Redis the main thread connected to (the embedded one included). */
  url: string;
  prefix: string;
  /** Resolved secret values, blanked in the thread's log lines too. */
  secrets: readonly string[];
}

export type ToDeliveryThread = { type: 'close'; deadlineMs: number };

export type SerializedError = { code?: string; message: string; where?: string; fix?: string; problems?: ConfigProblem[] };

export type FromDeliveryThread =
  | { type: 'ready' }
  | { type: 'closed' }
  | { type: 'failed'; error: SerializedError }
  | { type: 'metric'; name: 'sinkReceived' | 'sinkDelivered' | 'error' | 'deadLetter'; args: unknown[] }
  | { type: 'circuit'; pipeline: string; sink: string; value: number };

const CIRCUIT_NAMES = ['closed', 'open', 'half-open'] as const;

/** How long a closed thread may take to exit by itself before it is terminated. */
const EXIT_GRACE_MS = 5_000;

/**
 * The thread's heap: a few jobs in flight per partition, so a small old
 * generation suffices, and a cap makes V8 collect instead of growing the
 * heap lazily (the agent's RSS budget is 256 MiB for both threads).
 */
const THREAD_LIMITS = { maxOldGenerationSizeMb: 96, maxYoungGenerationSizeMb: 12 };

/**
 * Every sink of the agent, delivered from a `worker_threads` thread: reading
 * and mapping keep the main thread, queued batches are fetched, written and
 * acknowledged on the other, so both halves use a core each. Order is kept as
 * in one thread: one worker per partition, and BullMQ's global concurrency 1
 * per partition queue (set before the thread starts).
 *
 * Metrics and circuit changes come back as messages into the main thread's
 * `Telemetry`, so `/metrics` and `ferry status` see delivery as before.
 */
export class DeliveryThread {
  private readonly circuits = new Map<string, number>();
  private closed: (() => void) | undefined;
  private readonly exited: Promise<void>;
  /** Rejects when the thread fails (startup, a crash); the agent stops with that error. */
  readonly failed: Promise<never>;
  private fail!: (err: Error) => void;

  private constructor(
    private readonly worker: Worker,
    telemetry: DeliveryTelemetry,
    logger: Logger,
  ) {
    this.failed = new Promise<never>((_, reject) => (this.fail = reject));
    // Nobody may be listening yet (the agent attaches once every pipeline started).
    this.failed.catch(() => undefined);
    worker.on('message', (m: FromDeliveryThread) => {
      switch (m.type) {
        case 'metric':
          (telemetry[m.name] as (...args: unknown[]) => void)(...m.args);
          break;
        case 'circuit':
          this.circuits.set(`${m.pipeline}\0${m.sink}`, m.value);
          telemetry.circuitState.set({ pipeline: m.pipeline, sink: m.sink }, m.value);
          break;
        case 'failed':
          this.fail(revive(m.error));
          break;
        case 'closed':
          this.closed?.();
          break;
        default:
      }
    });
    worker.on('error', (err) => {
      logger.error({ err }, 'the delivery thread crashed');
      this.fail(err);
    });
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('exit', (code) => {
      if (this.closed === undefined) this.fail(new Error(`the delivery thread exited (${code}) before the agent stopped`));
      this.closed?.();
    });
  }

  /** Starts the thread; resolves once every sink is open and its workers run. */
  static async start(data: DeliveryThreadData, telemetry: DeliveryTelemetry, logger: Logger): Promise<DeliveryThread> {
    const worker = new Worker(new URL('./delivery-thread-main.js', import.meta.url), { workerData: data, resourceLimits: THREAD_LIMITS });
    const thread = new DeliveryThread(worker, telemetry, logger);
    const ready = new Promise<void>((resolve) => {
      const onReady = (m: FromDeliveryThread): void => {
        if (m.type !== 'ready') return;
        worker.off('message', onReady);
        resolve();
      };
      worker.on('message', onReady);
    });
    try {
      await Promise.race([ready, thread.failed]);
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    return thread;
  }

  /** `closed`, `open` or `half-open`, for `ferry status`. */
  circuit(pipeline: string, sink: string): string {
    return CIRCUIT_NAMES[this.circuits.get(`${pipeline}\0${sink}`) ?? 0] ?? 'closed';
  }

  /** Stops taking jobs, lets running writes finish (aborted at `deadlineMs`), closes the sinks; resolves when the thread is gone. */
  async close(deadlineMs = 10_000): Promise<void> {
    const done = new Promise<void>((resolve) => (this.closed = resolve));
    this.worker.postMessage({ type: 'close', deadlineMs } satisfies ToDeliveryThread);
    await Promise.race([done, this.failed]).catch(() => undefined);
    // Left to exit by itself, the thread hands what a `stdout` sink wrote to the main thread's stdout first.
    const timer = setTimeout(() => void this.worker.terminate(), EXIT_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }
}

function revive(e: SerializedError): Error {
  if (e.code === undefined) return new Error(e.message);
  if (e.problems) return new ConfigError(e.problems, e.code as ConstructorParameters<typeof ConfigError>[1]);
  return new FerryError(e.code as ErrorCode, e.message, { ...(e.where === undefined ? {} : { where: e.where }), ...(e.fix === undefined ? {} : { fix: e.fix }) });
}
