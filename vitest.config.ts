import { defineConfig } from 'vitest/config';

// Tests import the TypeScript sources directly; end-to-end tests spawn the built CLI (dist/),
// which `npm test` builds first. Two cores: keep the fork pool small, and give e2e tests
// (real aws, moto_server, oidc-provider) room to start.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
