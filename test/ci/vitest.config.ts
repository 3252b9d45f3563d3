import { defineConfig } from 'vitest/config';

/** Only test/ci/: checks of what .ci/run's `suite run ci` left, run by .ci/run after it. */
export default defineConfig({
  test: {
    include: ['test/ci/**/*.test.ts'],
    pool: 'forks',
  },
});
