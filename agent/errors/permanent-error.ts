import { FerryError } from './ferry-error.js';

/**
 * The target rejected the batch's content and will reject it again (a
 * webhook's 400, 413, 415 or 422, a constraint violation): not a wrong
 * credential or a target that is down, which are retryable. The delivery loop does not retry it: it
 * bisects the batch so the poison event goes to the dead-letter queue and its
 * neighbours are delivered.
 */
export class PermanentError extends FerryError {
  constructor(message: string, options: { cause?: unknown; where?: string } = {}) {
    super('FERRY_SINK_PERMANENT', message, options);
  }
}
