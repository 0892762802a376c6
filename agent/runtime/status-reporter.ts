import type { Redis } from 'ioredis';

/** What a running agent says about itself, every few seconds, for `ferry status`. */
export interface AgentStatus {
  agentId: string;
  pid: number;
  role: string;
  startedAt: string;
  at: string;
  pipelines: Array<{
    name: string;
    reading: boolean;
    /** Why the source is not reading while it waits to reopen (e.g. a replication slot held by another agent). */
    waitingFor?: { code: string; message: string };
    position: unknown;
    /** The source's own lag (e.g. replication slot bytes), when it reports one. */
    lag?: Array<{ unit: string; value: number }>;
    sinks: Array<{ name: string; circuit: string }>;
  }>;
  /** Counter snapshots: events read / queued per pipeline, delivered per sink. */
  counters: Record<string, number>;
}

export const STATUS_TTL_SECONDS = 30;

export function agentStatusKey(prefix: string, agentId: string): string {
  return `${prefix}:agent:${agentId}:status`;
}

export function agentStatusPattern(prefix: string): string {
  return `${prefix}:agent:*:status`;
}

/**
 * Writes the status every `intervalMs` with a TTL, so a dead agent's entry
 * expires; the returned stop removes it, so `ferry status` does not show a
 * cleanly stopped agent as running for the TTL.
 */
export function startStatusReporter(redis: Redis, prefix: string, collect: () => Promise<AgentStatus>, intervalMs = 5000): () => Promise<void> {
  let stopped = false;
  let agentId: string | undefined;
  let writing: Promise<void> = Promise.resolve();
  const write = async () => {
    const status = await collect();
    agentId = status.agentId;
    if (stopped) return;
    await redis.set(agentStatusKey(prefix, status.agentId), JSON.stringify(status), 'EX', STATUS_TTL_SECONDS);
  };
  const tick = () => {
    writing = write().catch(() => {});
  };
  const timer = setInterval(tick, intervalMs);
  tick();
  return async () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    // A write under way would put the entry back after the delete. Bounded: with Redis
    // unreachable both would wait for it, and a stop must not; the TTL then clears the entry.
    const cleared = writing
      .then(async () => {
        if (agentId !== undefined) await redis.del(agentStatusKey(prefix, agentId));
      })
      .catch(() => {});
    await Promise.race([cleared, new Promise((r) => setTimeout(r, 1000).unref())]);
  };
}
