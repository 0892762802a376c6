import { defineConfig } from 'vitest/config';

// Two cores: two forks. Integration tests isolate themselves by Redis key
// prefix, database name and temp folder, so files may run side by side; the
// fault tests that restart shared servers run afterwards, alone
// (see test/setup/run-tests.sh).
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', '**/*.fault.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // Generous: a timeout only ever fails a slow run (CI shares two cores with
    // Postgres, MariaDB and Redis); the waits inside each test still bound a hang.
    testTimeout: 180_000,
    hookTimeout: 120_000,
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/cleanup-setup.ts'],
  },
});
