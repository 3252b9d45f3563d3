import { defineConfig } from 'vitest/config';

/**
 * Only test/long/: every fault kind injected, confirmed, healed and verified on real deployments, and a
 * downstream's outages of its upstream waiting out gRPC's reconnect backoff; about two and a half
 * minutes each, for which npm test's 15 minutes have no room, so .ci/run runs them right after it.
 */
export default defineConfig({
  test: {
    include: ['test/long/**/*.test.ts'],
    pool: 'forks',
    // The two side by side, as they ran within npm test.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
