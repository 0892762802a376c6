import type { Logger } from 'pino';

/**
 * Repeats a Redis write until it succeeds, backing off up to 5 s. For writes
 * whose loss would lose events (queueing a batch, dead-lettering one): Redis
 * being away already makes the client wait; this covers Redis refusing
 * (OOM, a failover in progress, a script error) without ever dropping data.
 */
export async function writeUntilStored(write: () => Promise<unknown>, logger: Logger, what: string, context: Record<string, unknown> = {}): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await write();
      return;
    } catch (err) {
      logger.error({ err, attempt, ...context }, `could not ${what}; retrying`);
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 5000)));
    }
  }
}
