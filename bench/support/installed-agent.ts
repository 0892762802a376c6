import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { binNodeEnv, binNodeFlags, FERRY_BIN } from '../../agent/cli/bin-node-flags.js';

/**
 * Starts `ferry run --config CONFIG [args]` the way an installed `ferry` runs:
 * with the node flags and environment of `bin/ferry.js`'s shebang (its memory
 * budget), then any `nodeArgs` (e.g. `--cpu-prof`). Stderr is the bench's.
 */
export function spawnInstalledAgent(config: string, opts: { nodeArgs?: readonly string[]; args?: readonly string[]; stdout?: 'ignore' | number } = {}): ChildProcess {
  return spawn(process.execPath, [...binNodeFlags(), ...(opts.nodeArgs ?? []), FERRY_BIN, 'run', '--config', config, ...(opts.args ?? [])], {
    env: { ...process.env, ...binNodeEnv() },
    stdio: ['ignore', opts.stdout ?? 'ignore', 'inherit'],
  });
}

/** Stops (SIGTERM, waits) the agents still running, then deletes every Redis key under the bench's prefix. */
export async function stopAndForget(agents: readonly ChildProcess[], redisUrl: string, prefix: string): Promise<void> {
  for (const agent of agents) {
    if (agent.exitCode !== null) continue;
    agent.kill('SIGTERM');
    await once(agent, 'exit');
  }
  const redis = new Redis(redisUrl);
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
}
