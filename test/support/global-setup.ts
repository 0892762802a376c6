import { execFileSync } from 'node:child_process';

/**
 * Integration tests run the real `ferry` binary, which runs from dist/: build
 * once before any test file starts, so a test never runs stale code.
 */
export default function setup(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
}
