import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Tests run against the TypeScript sources of every workspace package (the `source` export
  // condition), so a test never sees a stale build.
  resolve: { conditions: ['source', 'node', 'import', 'default'] },
  ssr: {
    resolve: {
      // Not 'import': Vitest hands these conditions to its workers' node (`--conditions`), where
      // 'import' would make every require() of a dual package load its ES module build (pg's
      // require('pg-pool') then gets a module namespace, not the class). Vite adds 'import' or
      // 'require' itself, by how each module is imported.
      conditions: ['source', 'node', 'default'],
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
