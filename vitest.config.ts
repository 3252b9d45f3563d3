import { configDefaults, defineConfig } from 'vitest/config';
import LongFirstSequencer from './test/support/long-first-sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/long/ holds minutes-long fault tests, test/ci/ checks the output of .ci/run's `suite run ci`,
    // test/ci-kill/ kills a worker at every step for half an hour, and test/spire/ runs the lifecycle
    // on real SPIRE and `fidelity run` for minutes: .ci/run runs each with its own config.
    exclude: [...configDefaults.exclude, 'test/long/**', 'test/ci/**', 'test/ci-kill/**', 'test/spire/**'],
    pool: 'forks',
    // Two at a time on this project's two-core machines, the real-time drills among the rest.
    maxWorkers: 2,
    sequence: { sequencer: LongFirstSequencer },
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
