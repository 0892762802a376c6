import { loadConfig, secretValues } from '../../config/load-config.js';
import { runAgent, type AgentRole } from '../../runtime/agent.js';
import { createLogger } from '../../telemetry/logger.js';
import { disarmEarlyStop, earlyStop } from '../early-stop.js';

/** `ferry run --config FILE [--role all|read|deliver]`: the agent in the foreground. */
export async function run(opts: { config: string; role?: AgentRole }): Promise<number> {
  try {
    const config = await loadConfig(opts.config);
    const logger = createLogger(config.agent.logLevel, 2, secretValues(config));
    // runAgent installs its own handlers first thing, then the early ones go.
    const running = runAgent(config, { role: opts.role ?? 'all', logger, stopSignal: earlyStop.signal });
    disarmEarlyStop();
    return await running;
  } finally {
    disarmEarlyStop();
  }
}
