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
    // The suite runs on the oldest supported Node (20) on purpose. On Node < 22 the AWS SDK (the broker's STS client)
    // prints a seven-line notice, once per process, that its releases after January 2027 need Node 22 — addressed
    // to whoever operates a broker, who should upgrade (README: Node 22 or 24). A test run cannot act on it, so it
    // uses the SDK's documented switch (@aws-sdk/core emitWarningIfUnsupportedVersion); real brokers still warn.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
