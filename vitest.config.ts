import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/ci/ checks the output of .ci/run's `suite run ci`; .ci/run runs it with its own config.
    exclude: [...configDefaults.exclude, 'test/ci/**'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
