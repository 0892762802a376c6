#!/usr/bin/env node
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
const { main } = await import(entry);
process.exitCode = await main(process.argv);
