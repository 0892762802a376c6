import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The `ferry` executable, whether this module runs compiled (dist/agent/cli) or from source (agent/cli). */
export const FERRY_BIN = join(resolve(here, here.split('/').includes('dist') ? '../../..' : '../..'), 'bin/ferry.js');

/** The `#!/usr/bin/env -S [NAME=value ...] node [flags ...]` line of `bin/ferry.js`. */
function shebang(): { env: Record<string, string>; flags: string[] } {
  const first = readFileSync(FERRY_BIN, 'utf8').split('\n', 1)[0] ?? '';
  const words = (/^#!\/usr\/bin\/env -S (.*)$/.exec(first)?.[1] ?? '').split(' ').filter(Boolean);
  const node = words.indexOf('node');
  const env = Object.fromEntries(words.slice(0, Math.max(0, node)).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  return { env, flags: words.slice(node + 1) };
}

/**
 * The node flags `bin/ferry.js` gives itself in its shebang (the agent's
 * memory budget), for whoever starts it another way: a systemd unit, a
 * benchmark starting it "as installed".
 */
export function binNodeFlags(): string[] {
  return shebang().flags;
}

/**
 * The environment the shebang sets (`MALLOC_ARENA_MAX`: glibc gives every
 * thread its own malloc arenas, and freed memory kept in them counts toward
 * the agent's RSS), for the same starters.
 */
export function binNodeEnv(): Record<string, string> {
  return shebang().env;
}
