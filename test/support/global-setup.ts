import { spawnSync } from 'node:child_process';

/**
 * Integration tests run the real `ferry` binary, which runs from dist/: build
 * once before any test file starts, so a test never runs stale code.
 * Type errors do not stop the run here (tsc still emits); the strict build in
 * test/setup/run-tests.sh is what fails CI on them. FERRY_SKIP_BUILD=1 skips
 * the build when the caller has just built.
 */
export default function setup(): void {
  if (process.env.FERRY_SKIP_BUILD === '1') return;
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  if (r.status !== 0) console.warn('global-setup: tsc reported errors; dist/ was emitted anyway');
}
