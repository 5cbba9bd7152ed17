import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start their own servers on ephemeral ports; files run in parallel forks.
    pool: 'forks',
    // Two at a time on these two-core machines (vitest's default is one fewer than the cores):
    // most files wait on servers and child processes, and run in half the time side by side.
    maxWorkers: 2,
  },
});
