import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The ferry.yaml every benchmark runs: one pipeline on the given Redis and
 * prefix, its source (YAML lines indented for the `source:` block, ending in
 * a newline), a file sink under ./out, and the benchmarks' delivery settings.
 * Returns the config's path.
 */
export function writeBenchConfig(
  dir: string,
  o: { redis: string; prefix: string; pipeline: string; source: string; mappings: string; sinkFile: string; delivery?: string },
): string {
  const config = join(dir, 'ferry.yaml');
  writeFileSync(
    config,
    `agent: { id: bench, dataDir: ./data, logLevel: warn }
queue: { redis: "${o.redis}", prefix: ${o.prefix} }
pipelines:
  - name: ${o.pipeline}
    source:
${o.source}    mappings: [${o.mappings}]
    sinks:
      - { name: audit, type: file, path: ./out/${o.sinkFile} }
    delivery: ${o.delivery ?? '{ partitions: 4, batch: { maxEvents: 1000, maxWaitMs: 20 } }'}
`,
  );
  return config;
}
