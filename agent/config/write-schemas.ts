import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderSchemas } from './render-schemas.js';

/**
 * `npm run schemas` (after `npm run build`): writes docs/schemas/*.json and
 * docs/reference/config.md from the TypeBox declarations and the registered
 * plugins. test/unit/schemas-fresh.test.ts fails when they are stale.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
for (const [path, text] of renderSchemas()) {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  process.stdout.write(`wrote ${path}\n`);
}
