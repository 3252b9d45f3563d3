import { defineConfig } from 'vitest/config';

/**
 * Only test/ci-kill/: the worker killed at every step (about half an hour), a drill's worker killed
 * mid-hold or for good, and a worker killed mid spin-up and mid rotation; .ci/run runs them after the
 * ci suite.
 */
export default defineConfig({
  test: {
    include: ['test/ci-kill/**/*.test.ts'],
    pool: 'forks',
    // One file at a time: each runs real drills whose timing a second one would disturb.
    fileParallelism: false,
    testTimeout: 3_600_000,
    hookTimeout: 300_000,
  },
});
