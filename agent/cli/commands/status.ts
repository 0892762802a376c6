import { truncate } from '../format.js';
import type { Redis } from 'ioredis';
import { loadConfig, secretValues } from '../../config/load-config.js';
import { DeadLetterQueue, MAPPING_DLQ } from '../../queue/dead-letter-queue.js';
import { openPartitionQueue } from '../../queue/partition-queue.js';
import { checkpointKey } from '../../queue/queue-names.js';
import { openQueueConnection } from '../../runtime/queue-connection.js';
import { agentStatusPattern, type AgentStatus } from '../../runtime/status-reporter.js';
import { createLogger } from '../../telemetry/logger.js';

interface PipelineStatus {
  name: string;
  agents: Array<{ agentId: string; pid: number; role: string; reading: boolean; waitingFor?: { code: string; message: string }; since: string; lastSeen: string; lag?: Array<{ unit: string; value: number }> }>;
  position: unknown;
  counters: Record<string, number>;
  mappingDeadLetters: number;
  sinks: Array<{ name: string; waitingJobs: number; activeJobs: number; deadLetters: number; circuit: string }>;
}

/** `ferry status`: what Redis and the running agents' heartbeats say about every pipeline. */
export async function run(opts: { config: string; json?: boolean }): Promise<number> {
  const config = await loadConfig(opts.config);
  const conn = await openQueueConnection(config, createLogger('warn', 2, secretValues(config)), 'ferry:status');
  try {
    const agents = await runningAgents(conn.redis, conn.prefix);
    const out: PipelineStatus[] = [];
    for (const p of config.pipelines) {
      const mine = agents.filter((a) => a.pipelines.some((x) => x.name === p.name));
      const sinks = [];
      for (const s of p.sinks) {
        let waitingJobs = 0;
        let activeJobs = 0;
        for (let i = 0; i < p.delivery.partitions; i++) {
          // Not a bare Queue: any handle without the stream cap would lift it for every process (partition-queue.ts).
          const q = openPartitionQueue(conn.redis, conn.prefix, p.name, s.name, i);
          const c = await q.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'paused');
          waitingJobs += (c.wait ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0) + (c.paused ?? 0);
          activeJobs += c.active ?? 0;
          await q.close();
        }
        const dlq = new DeadLetterQueue(conn.redis, conn.prefix, p.name, s.name);
        const deadLetters = await dlq.depth();
        await dlq.close();
        const circuit = mine.flatMap((a) => a.pipelines.find((x) => x.name === p.name)?.sinks.filter((x) => x.name === s.name).map((x) => x.circuit) ?? []).filter((c) => c !== 'n/a');
        sinks.push({ name: s.name, waitingJobs, activeJobs, deadLetters, circuit: circuit.length ? [...new Set(circuit)].join(',') : 'no agent' });
      }
      const mdlq = new DeadLetterQueue(conn.redis, conn.prefix, p.name, MAPPING_DLQ);
      const mappingDeadLetters = await mdlq.depth();
      await mdlq.close();
      const raw = await conn.redis.get(checkpointKey(conn.prefix, p.name));
      const counters: Record<string, number> = {};
      for (const a of mine) for (const [k, v] of Object.entries(a.counters)) if (k.includes(`{${p.name}/`)) counters[k] = (counters[k] ?? 0) + v;
      out.push({
        name: p.name,
        agents: mine.map((a) => {
          const mineP = a.pipelines.find((x) => x.name === p.name);
          return { agentId: a.agentId, pid: a.pid, role: a.role, reading: mineP?.reading ?? false, ...(mineP?.waitingFor ? { waitingFor: mineP.waitingFor } : {}), since: a.startedAt, lastSeen: a.at, ...(mineP?.lag ? { lag: mineP.lag } : {}) };
        }),
        position: raw === null ? null : JSON.parse(raw),
        counters,
        mappingDeadLetters,
        sinks,
      });
    }
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ pipelines: out }, null, 2)}\n`);
    } else {
      for (const p of out) {
        process.stdout.write(`pipeline ${p.name}\n`);
        process.stdout.write(`  agents:     ${p.agents.length ? p.agents.map((a) => `${a.agentId} (pid ${a.pid}, ${a.role}, ${a.reading ? 'reading' : a.waitingFor ? `waiting: ${a.waitingFor.code}: ${a.waitingFor.message}` : 'not reading'})`).join(', ') : 'none running'}\n`);
        process.stdout.write(`  position:   ${p.position === null ? 'none committed yet' : truncate(JSON.stringify(p.position), 200)}\n`);
        const lag = p.agents.flatMap((a) => a.lag ?? []);
        if (lag.length) process.stdout.write(`  source lag: ${lag.map((l) => `${l.value} ${l.unit}`).join(', ')}\n`);
        const read = sum(p.counters, 'component_received_events_total', '/source/');
        const queued = sum(p.counters, 'component_sent_events_total', '/source/');
        process.stdout.write(`  read:       ${read} records, ${queued} events queued (since the agents started)\n`);
        process.stdout.write(`  contract dead letters: ${p.mappingDeadLetters}\n`);
        for (const s of p.sinks) {
          const sent = sum(p.counters, 'component_sent_events_total', `/sink/${s.name}}`);
          process.stdout.write(`  sink ${s.name}: ${sent} delivered, queue ${s.waitingJobs} batches waiting + ${s.activeJobs} in delivery, dead letters ${s.deadLetters}, circuit ${s.circuit}\n`);
        }
      }
    }
    return 0;
  } finally {
    await conn.close();
  }
}

async function runningAgents(redis: Redis, prefix: string): Promise<AgentStatus[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', agentStatusPattern(prefix), 'COUNT', 100);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const values = keys.length ? await redis.mget(keys) : [];
  return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as AgentStatus);
}

function sum(counters: Record<string, number>, metric: string, part: string): number {
  return Object.entries(counters)
    .filter(([k]) => k.startsWith(`${metric}{`) && k.includes(part))
    .reduce((a, [, v]) => a + v, 0);
}
