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

/** Writes the status every `intervalMs` with a TTL, so a dead agent's entry expires. */
export function startStatusReporter(redis: Redis, prefix: string, collect: () => Promise<AgentStatus>, intervalMs = 5000): () => Promise<void> {
  let stopped = false;
  const write = async () => {
    const status = await collect();
    await redis.set(agentStatusKey(prefix, status.agentId), JSON.stringify(status), 'EX', STATUS_TTL_SECONDS);
  };
  const timer = setInterval(() => void write().catch(() => {}), intervalMs);
  void write().catch(() => {});
  return async () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
  };
}
