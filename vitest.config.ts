import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Tests run against the TypeScript sources of every workspace package (the `source` export
  // condition), so a test never sees a stale build.
  resolve: { conditions: ['source', 'node', 'import', 'default'] },
  ssr: {
    resolve: {
      conditions: ['source', 'node', 'import', 'default'],
      externalConditions: ['source'],
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
