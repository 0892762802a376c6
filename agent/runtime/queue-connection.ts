import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { FerryConfig } from '../config/schema.js';
import { FerryError } from '../errors/index.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../queue/embedded-redis.js';
import { connectRedis, evictionPolicy, waitReady } from '../queue/redis-connection.js';

/** The Redis a configuration points at, connected and checked. */
export interface QueueConnection {
  redis: Redis;
  url: string;
  prefix: string;
  /**
   * Closes the connection. The embedded server is stopped `always` (the
   * agent owns it, even one it reused after a crash) or only `if-started`
   * by this process (CLI commands, which must not stop a running agent's).
   */
  close(opts?: { stopEmbedded?: 'always' | 'if-started' | 'never' }): Promise<void>;
}

/**
 * Connects to `queue.redis`, or with none configured to the embedded
 * redis-server of `agent.dataDir` (started if it is not running). Refuses a
 * Redis that may evict keys: BullMQ loses jobs there.
 */
export async function openQueueConnection(config: FerryConfig, logger: Logger, name: string): Promise<QueueConnection> {
  let embedded: EmbeddedRedis | undefined;
  const url = config.queue.redis ?? (embedded = await startEmbeddedRedis(config.agent.dataDir, logger)).url;
  const redis = connectRedis(url, name);
  redis.on('error', (err) => logger.debug({ err: err.message }, 'redis connection error'));
  try {
    await waitReady(redis, url);
    const policy = await evictionPolicy(redis);
    if (policy !== 'noeviction' && policy !== 'unknown') {
      throw new FerryError('FERRY_QUEUE_MISCONFIGURED', `Redis runs with maxmemory-policy ${policy}; queued events could be evicted`, { where: 'queue.redis' });
    }
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  return {
    redis,
    url,
    prefix: config.queue.prefix,
    close: async ({ stopEmbedded = 'if-started' } = {}) => {
      await redis.quit().catch(() => redis.disconnect());
      if (embedded && (stopEmbedded === 'always' || (stopEmbedded === 'if-started' && embedded.startedHere))) await embedded.stop();
    },
  };
}
