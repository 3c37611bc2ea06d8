import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Temporal's native worker and real terraform runs want a process per file, not threads.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // 2-core machines: real servers and terraform per file; more forks only thrash.
    maxWorkers: 2,
    // In CI also a JSON report, from which .ci/run prints a plain "N passed, N failed" closing line.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: '.vitest/results.json' },
  },
});
