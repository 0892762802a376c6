import type { Logger } from 'pino';
import type { FerryEvent } from '../event/cloud-event.js';
import type { CheckResult } from './source.js';

/** What the framework hands a sink when it opens it. */
export interface SinkContext {
  pipeline: string;
  /** The sink's name in the pipeline (`sinks[].name`). */
  sink: string;
  agentId: string;
  dataDir: string;
  logger: Logger;
}

/**
 * The contract every sink implements (see docs/specs/component.md).
 *
 * `write(events, signal)` delivers the whole batch or throws:
 * - `RetryableError` (or any error that is not a `PermanentError`): the
 *   batch is retried with exponential backoff and jitter, honouring
 *   `retryAfterMs`; after the last attempt it goes to the dead-letter queue.
 * - `PermanentError`: the target will never accept it; the framework bisects
 *   the batch so one poison event goes to the dead-letter queue alone.
 *
 * Delivery is at least once: the same event may be written again after a
 * crash, always with the same `id`, which the sink passes on (Idempotency-Key,
 * message id) so the target can drop duplicates. Calls to `write` on one sink
 * instance may run concurrently (one per partition); events of one partition
 * arrive in order and never concurrently.
 */
export interface Sink {
  open(ctx: SinkContext): Promise<void>;
  write(events: FerryEvent[], signal: AbortSignal): Promise<void>;
  /** Preflight for `ferry check`: does a real, harmless operation against the target. */
  check?(): Promise<CheckResult[]>;
  close(): Promise<void>;
}
