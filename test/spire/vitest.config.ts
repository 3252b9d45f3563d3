import { defineConfig } from 'vitest/config';

/**
 * Only test/spire/: `fidelity run` end to end, a suite run twice on fresh deployments (a few
 * minutes), too slow for npm test's vitest run. Run it alone: `npx vitest run --config test/spire/vitest.config.ts`.
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
