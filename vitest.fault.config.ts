import { defineConfig } from 'vitest/config';

// Fault tests restart servers other tests share (Redis on its own port,
// Postgres, MariaDB), so they run after the rest, one file at a time.
export default defineConfig({
  test: {
    include: ['test/integration/**/*.fault.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/cleanup-setup.ts'],
  },
});
