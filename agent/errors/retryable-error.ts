import { FerryError } from './ferry-error.js';

/**
 * A sink or source failed in a way that may pass: a timeout, a 5xx, a dropped
 * connection. The delivery loop retries with exponential backoff and jitter;
 * `retryAfterMs` (from an HTTP `Retry-After`, say) overrides the next delay.
 */
export class RetryableError extends FerryError {
  readonly retryAfterMs: number | undefined;

  /** `code`: a source says `FERRY_SOURCE_UNAVAILABLE` (the default names a sink). */
  constructor(message: string, options: { retryAfterMs?: number; cause?: unknown; where?: string; fix?: string; code?: 'FERRY_SINK_RETRYABLE' | 'FERRY_SOURCE_UNAVAILABLE' } = {}) {
    super(options.code ?? 'FERRY_SINK_RETRYABLE', message, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}
