import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * TEST_MODE selects the suites: unit (no services), integration (real Kafka broker, Redis
 * and ClickHouse engine; test/global-setup.ts starts them), or all. Unknown values are refused.
 *
 * Projects, one group after another (sequence.groupOrder), two files at a time in each:
 * 0. unit: every unit file; beside them `producer-delivery`, the one integration file that stops
 *    and restarts the shared broker, which no unit file uses;
 * 1. integration: each file has its own topics, group, dead-letter queue, database and engine
 *    data directory (test/helpers/stack.ts testConfig), so two files do not see each other's
 *    data; most of a file's time is waiting on Kafka's group protocol and timeouts, which two
 *    files overlap (INTEGRATION_WORKERS, default 2: with 3 the group took 268 s against 288 on
 *    2 cores, the migration runner's file, CPU-bound, growing from 133 to 198 s);
 * 2. integration, alone: the files that would disturb another file or be disturbed by one (a
 *    shared port, the SDK's build, a tight time bound), one at a time (INTEGRATION_ALONE).
 */
const mode = process.env.TEST_MODE ?? 'all';
if (!['unit', 'integration', 'all'].includes(mode)) throw new Error(`TEST_MODE must be unit, integration or all; got ${JSON.stringify(mode)}`);
const integrationWorkersText = process.env.INTEGRATION_WORKERS ?? '2';
if (!/^[1-9][0-9]*$/.test(integrationWorkersText)) throw new Error(`INTEGRATION_WORKERS must be a positive integer; got ${JSON.stringify(integrationWorkersText)}`);
const integrationWorkers = Number(integrationWorkersText);

/** Integration files that run with no other integration file beside them, and why. */
const INTEGRATION_ALONE: Record<string, string> = {
  'producer-delivery': 'stops and restarts the shared broker (it runs beside the unit files)',
  'clickhouse-redis-tls': "its TLS Redis takes port 6381 and it expects 6382 closed, both redis-readiness-logs's ports; it also starts the secured broker, as kafka-security does",
  'compiled-worker': 'rebuilds the SDK package every other file imports (npm run build)',
  'redis-durability': 'bounds a refused write at 100 ms',
  'crash-recovery': 'bounds a restarted worker at 20 s to its first insert after kill -9, and a restarted instance at 20 s to its join (its session: 30 s)',
  'migration-lock': 'times how long a successor waits for a killed holder’s lease',
  backpressure: 'bounds a fast table at 15 s while a slow backlog drains',
};
const file = (name: string) => `test/integration/${name}.test.ts`;
const alone = Object.keys(INTEGRATION_ALONE).filter((n) => n !== 'producer-delivery').map(file);
const integrationSetup = ['test/build-sdk.ts', 'test/global-setup.ts'];

/**
 * The longest files first, so that two workers end together: on a fresh clone vitest has no
 * durations of earlier runs and would start by file size. Measured on 2 cores, 40-160 s each.
 */
const LONGEST_FIRST = ['migrations', 'kafka-security', 'cli-commands', 'schema-registry', 'topic-recreated', 'redis-readiness-logs', 'kafka-codecs', 'dead-letters'];
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((n) => f.moduleId.endsWith(`/${n}.test.ts`));
      return i < 0 ? LONGEST_FIRST.length : i;
    };
    const group = (f: TestSpecification) => f.project.config.sequence.groupOrder;
    return sorted
      .map((f, i) => ({ f, i }))
      .sort((a, b) => group(a.f) - group(b.f) || (a.f.project.name < b.f.project.name ? -1 : a.f.project.name > b.f.project.name ? 1 : 0) || rank(a.f) - rank(b.f) || a.i - b.i)
      .map(({ f }) => f);
  }
}

const projects: TestProjectInlineConfiguration[] = [];
if (mode !== 'integration') {
  projects.push({ extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], globalSetup: ['test/build-sdk.ts'], maxWorkers: 2, sequence: { groupOrder: 0 } } });
}
if (mode !== 'unit') {
  projects.push(
    { extends: true, test: { name: 'integration-broker-restart', include: [file('producer-delivery')], globalSetup: integrationSetup, maxWorkers: 2, sequence: { groupOrder: 0 } } },
    { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'], exclude: [...alone, file('producer-delivery')], globalSetup: integrationSetup, maxWorkers: integrationWorkers, sequence: { groupOrder: 1 } } },
    { extends: true, test: { name: 'integration-alone', include: alone, globalSetup: integrationSetup, fileParallelism: false, sequence: { groupOrder: 2 } } },
  );
}

export default defineConfig({
  test: {
    projects,
    // Each test file runs in its own process: the embedded ClickHouse engine binds one data
    // directory per process, so every file gets its own directory and state.
    pool: 'forks',
    sequence: { sequencer: LongestFirst },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
