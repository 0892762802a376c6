import type { Redis } from 'ioredis';

/**
 * Durable key-value state the framework keeps for a pipeline's source, in
 * Redis beside the queue (so an agent that takes over a source after a lease
 * lapses sees the same state). Values are strings; callers serialise.
 */
export interface StateStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

/** A StateStore on one Redis hash. */
export class RedisStateStore implements StateStore {
  constructor(
    private readonly redis: Redis,
    private readonly hashKey: string,
  ) {}

  async get(key: string): Promise<string | undefined> {
    return (await this.redis.hget(this.hashKey, key)) ?? undefined;
  }

  async set(key: string, value: string): Promise<void> {
    await this.redis.hset(this.hashKey, key, value);
  }

  async delete(key: string): Promise<void> {
    await this.redis.hdel(this.hashKey, key);
  }
}

/** An in-memory StateStore, for `ferry mapping test`, unit tests and conformance suites. */
export class MemoryStateStore implements StateStore {
  readonly map = new Map<string, string>();
  async get(key: string): Promise<string | undefined> {
    return this.map.get(key);
  }
  async set(key: string, value: string): Promise<void> {
    this.map.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.map.delete(key);
  }
}
