import { defineConfig } from 'vitest/config';

/**
 * Only test/spire/: the lifecycle on real SPIRE v1.13.3 (spire-server and spire-agent from tools/bin),
 * a few minutes of real drills; npm test has no time left for it, so .ci/run runs it after the ci suite.
 */
export default defineConfig({
  test: {
    include: ['test/spire/**/*.test.ts'],
    pool: 'forks',
    // One file at a time: each runs a whole deployment whose timing a second one would disturb.
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 180_000,
  },
});
