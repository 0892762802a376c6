#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-old-space-size=128 --max-semi-space-size=4
// The node flags above are part of the agent's memory budget (RSS <= 256 MiB
// whatever the file or backlog, docs/benchmarks.md#csv-drop): without a cap V8
// grows the old generation lazily to several hundred MiB of garbage before it
// collects; a smaller young generation keeps another ~25 MiB off. The delivery
// thread has its own limits (agent/runtime/delivery-thread.ts). `node
// bin/ferry.js` bypasses the shebang (flags on node's command line win over
// NODE_OPTIONS): that is how to give a deployment other limits.
// The compiled CLI lives in dist/ (built by `npm run build`, which the
// quickstart and test commands run). A clear message beats a stack trace when
// someone runs the bin before building.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../dist/agent/cli/main.js', import.meta.url));
if (!existsSync(entry)) {
  process.stderr.write('ferry: not built yet; run `npm install && npm run build` in the Ferry folder first.\n');
  process.exit(1);
}
// Before the CLI's module graph loads (a good part of a second): a stop of
// `ferry run` from then on ends in an orderly exit 0 (agent/cli/early-stop.ts).
await import(new URL('../dist/agent/cli/early-stop.js', import.meta.url).href);
const { main } = await import(entry);
process.exitCode = await main(process.argv);
