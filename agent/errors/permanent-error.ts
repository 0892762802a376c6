import { FerryError } from './ferry-error.js';

/**
 * The target rejected the batch and will reject it again (a 4xx other than
 * 408/429, a constraint violation). The delivery loop does not retry it: it
 * bisects the batch so the poison event goes to the dead-letter queue and its
 * neighbours are delivered.
 */
export class PermanentError extends FerryError {
  constructor(message: string, options: { cause?: unknown; where?: string } = {}) {
    super('FERRY_SINK_PERMANENT', message, options);
  }
}
