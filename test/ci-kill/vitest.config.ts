import { defineConfig } from 'vitest/config';

/** Only test/ci-kill/: the worker killed at every step, about half an hour; .ci/run runs it after the ci suite. */
export default defineConfig({
  test: {
    include: ['test/ci-kill/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 3_600_000,
    hookTimeout: 300_000,
  },
});
