import { defineConfig } from 'vitest/config';

/**
 * TEST_MODE selects the suites: unit (no services), integration (real Kafka broker, Redis
 * and ClickHouse engine; test/global-setup.ts starts them), or all. Unknown values are refused.
 */
const mode = process.env.TEST_MODE ?? 'all';
const suites: Record<string, string[]> = {
  unit: ['test/unit/**/*.test.ts'],
  integration: ['test/integration/**/*.test.ts'],
  all: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
};
if (!suites[mode]) throw new Error(`TEST_MODE must be unit, integration or all; got ${JSON.stringify(mode)}`);

export default defineConfig({
  test: {
    include: suites[mode],
    // The producer package is built first (test/build-sdk.ts); the services only for integration.
    globalSetup: ['test/build-sdk.ts', ...(mode === 'unit' ? [] : ['test/global-setup.ts'])],
    // Each test file runs in its own process: the embedded ClickHouse engine binds one data
    // directory per process, so every file gets its own directory and state.
    pool: 'forks',
    fileParallelism: mode === 'unit',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
