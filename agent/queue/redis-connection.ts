import { Redis } from 'ioredis';
import { FerryError } from '../errors/index.js';
import { redactUrl } from '../telemetry/logger.js';

/**
 * A Redis connection for BullMQ. `maxRetriesPerRequest: null` is what BullMQ
 * requires for workers, and it is also what we want for the reader: while
 * Redis is away, enqueueing waits (and positions do not move) instead of
 * failing.
 */
export function connectRedis(url: string, name: string): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectionName: name,
    retryStrategy: (times) => Math.min(200 * times, 2000),
  });
}

/** Waits until a connection is ready, or fails with a clear error after `timeoutMs`. */
export async function waitReady(redis: Redis, url: string, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new FerryError('FERRY_QUEUE_UNAVAILABLE', `cannot reach Redis at ${redactUrl(url)} within ${timeoutMs} ms`, { where: 'queue.redis' }));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/**
 * BullMQ loses jobs when Redis evicts keys: it must run with
 * `maxmemory-policy noeviction`. Returns the policy found.
 */
export async function evictionPolicy(redis: Redis): Promise<string> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    return reply[1] ?? 'unknown';
  } catch {
    // Managed Redis services often forbid CONFIG; say we could not tell.
    return 'unknown';
  }
}
