/**
 * How to start a pipeline over from a new snapshot, for a stored position a
 * CDC source cannot go on from. `ferry snapshot` is no way out: it leaves the
 * stored position alone, so the agent would stop at the same place again.
 * The key is checkpointKey() of agent/queue/queue-names.ts.
 */
export function startOverFix(pipeline: string | undefined): string {
  const name = pipeline ?? 'PIPELINE';
  return (
    `stop the agent, delete the pipeline's stored position with redis-cli -u REDIS_URL DEL ferry:pipeline:${name}:checkpoint ` +
    '(REDIS_URL being queue.redis; ferry the default queue.prefix, put yours if you set one) and start the agent with snapshot: initial: ' +
    'it re-reads every captured table and streams on from there. `ferry snapshot` alone does not help: it leaves the stored position as it is'
  );
}
