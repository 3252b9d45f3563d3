import { configDefaults, defineConfig } from 'vitest/config';
import LongFirstSequencer from './test/support/long-first-sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/ci/ checks the output of .ci/run's `suite run ci`, and test/ci-kill/ kills a worker at every
    // step for half an hour: .ci/run runs each with its own config. test/spire/ runs `fidelity run`
    // (two deployments in turn, minutes), with its own config too.
    exclude: [...configDefaults.exclude, 'test/ci/**', 'test/ci-kill/**', 'test/spire/**'],
    pool: 'forks',
    // Two at a time on this project's two-core machines, the real-time drills among the rest.
    maxWorkers: 2,
    sequence: { sequencer: LongFirstSequencer },
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
