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
  },
});
