import { defineConfig } from 'vitest/config';

/**
 * Only test/spire/: the lifecycle on real SPIRE v1.13.3 (spire-server and spire-agent from tools/bin)
 * and `fidelity run` end to end (a suite run on two fresh deployments in turn): minutes of real
 * drills, for which npm test has no time left, so .ci/run runs them after the ci suite.
 */
export default defineConfig({
  test: {
    include: ['test/spire/**/*.test.ts'],
    pool: 'forks',
    // One file at a time: each spins up deployments whose timing a second one would disturb.
    fileParallelism: false,
    testTimeout: 1_800_000,
    hookTimeout: 300_000,
  },
});
