import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestWorker } from '../../consumers/worker.js';
import { costEvents } from '../helpers/cost-events.js';
import { countRows, queryRows, testConfig, waitFor } from '../helpers/stack.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const packageDir = join(root, 'producers/typescript');

/**
 * The SDK as another repository gets it: `npm pack` of producers/typescript, installed from the
 * tarball into an empty project, imported by its name from plain .mjs files run by `node` (no
 * tsx, no path into this repository), emitting to the real broker; a worker of this repository
 * lands the rows. Proves the tarball holds everything the SDK needs at run time (schemas, wire
 * format, codecs, Kafka settings), that its dependencies are declared, and that its exports map
 * and declarations work for a TypeScript consumer.
 */
describe('the packed SDK, installed into an empty project', () => {
  const config = testConfig();
  const brokers = config.kafka.brokers.join(',');
  let app: string;
  let worker: IngestWorker | undefined;

  /** Runs `script` (an .mjs of the app) with `env` on top of this process's environment minus its KAFKA_* variables. */
  const node = async (script: string, env: Record<string, string>, args: string[] = []) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KAFKA_')));
    try {
      const { stdout } = await run(process.execPath, [join(app, script), ...args], { cwd: app, env: { ...base, ...env }, timeout: 90_000 });
      return { code: 0, stdout, stderr: '' };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };

  beforeAll(async () => {
    app = mkdtempSync(join(tmpdir(), 'sdk-consumer-'));
    const packDir = join(app, '.pack');
    mkdirSync(packDir);
    // `npm pack` runs the package's prepack (its tsc build), as a publish would.
    await run('npm', ['pack', '--silent', '--pack-destination', packDir], { cwd: packageDir, timeout: 120_000 });
    const [tarball] = readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
    expect(tarball).toMatch(/^kafka-clickhouse-ingest-producer-.*\.tgz$/);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'sdk-consumer', private: true, type: 'module' }));
    // The dependencies come from the registry through npm's cache (warm on this machine).
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(packDir, tarball!)], { cwd: app, timeout: 180_000 });
    writeFileSync(join(app, 'events.json'), JSON.stringify({ withOptions: costEvents(700, 0), fromEnv: costEvents(300, 700) }));
    // Connects with the options given on the command line, or (none given) from the KAFKA_* variables alone.
    writeFileSync(
      join(app, 'emit.mjs'),
      `import { readFileSync } from 'node:fs';
import { IngestProducer, EventValidationError, ConfigError } from '@kafka-clickhouse-ingest/producer';
const [which, brokers, topicPrefix] = process.argv.slice(2);
const events = JSON.parse(readFileSync(new URL('./events.json', import.meta.url), 'utf8'))[which];
let sdk;
try {
  sdk = await IngestProducer.connect(brokers ? { brokers: brokers.split(','), topicPrefix, lingerMs: 2 } : {});
} catch (err) {
  console.error(JSON.stringify({ name: err.name, configError: err instanceof ConfigError, message: err.message }));
  process.exit(3);
}
// A bad event is refused with the package's own error class.
const refused = await sdk.emitCostMetrics([{ ...events[0], customer_id: 'not-a-uuid' }]).then(() => false, (err) => err instanceof EventValidationError);
await sdk.emitCostMetrics(events);
const sent = (await sdk.metrics.eventsSent.get()).values.reduce((n, v) => n + v.value, 0);
await sdk.close();
console.log(JSON.stringify({ refused, sent, client: sdk.events.client }));
`,
    );
    worker = await IngestWorker.start(config);
  }, 400_000);

  afterAll(async () => {
    await worker?.stop();
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it('emits with options, by the package name from plain node, and the rows land', async () => {
    const r = await node('emit.mjs', {}, ['withOptions', brokers, config.kafka.topicPrefix]);
    expect(r.code, r.stderr).toBe(0);
    // scripts/test.sh runs this file once per producer client (the child inherits INGEST_PRODUCER_CLIENT).
    expect(JSON.parse(r.stdout)).toEqual({ refused: true, sent: 700, client: process.env.INGEST_PRODUCER_CLIENT || 'platformatic' });
    await waitFor('700 rows', async () => (await countRows(worker!.clickhouse, 'cost_metrics_ts')) === 700);
    const [ids] = await queryRows<{ lo: string; hi: string; n: string }>(worker!.clickhouse, 'SELECT min(toUInt32(substring(instance_id, 3))) AS lo, max(toUInt32(substring(instance_id, 3))) AS hi, uniqExact(instance_id) AS n FROM cost_metrics_ts');
    expect({ lo: Number(ids!.lo), hi: Number(ids!.hi), n: Number(ids!.n) }).toEqual({ lo: 0, hi: 699, n: 700 });
  });

  it('with no options, connects from the KAFKA_* variables alone, and the rows land', async () => {
    const r = await node('emit.mjs', { KAFKA_BROKERS: brokers, KAFKA_TOPIC_PREFIX: config.kafka.topicPrefix, KAFKA_CLIENT_ID: 'packed-sdk-env' }, ['fromEnv']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ refused: true, sent: 300 });
    // Only the variable's prefix can have routed these to this worker's topics.
    await waitFor('1000 rows', async () => (await countRows(worker!.clickhouse, 'cost_metrics_ts')) === 1_000);
  });

  it('refuses a bad variable naming it, and never prints a secret', async () => {
    const bad = await node('emit.mjs', { KAFKA_BROKERS: 'kafka', KAFKA_TOPIC_PREFIX: config.kafka.topicPrefix }, ['fromEnv']);
    expect(bad.code).toBe(3);
    expect(JSON.parse(bad.stderr)).toMatchObject({ name: 'ConfigError', configError: true });
    expect(bad.stderr).toMatch(/KAFKA_BROKERS: \\"kafka\\" is not host:port/);
    const secret = await node('emit.mjs', { KAFKA_BROKERS: brokers, KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'app', KAFKA_SASL_PASSWORD: 'hunter2-do-not-print' }, ['fromEnv']);
    expect(secret.code).toBe(3);
    expect(secret.stderr).toMatch(/KAFKA_SASL_PASSWORD is set, but KAFKA_SECURITY_PROTOCOL \(or ProducerOptions\.security\.securityProtocol\)=PLAINTEXT does not use SASL/);
    expect(secret.stderr).not.toContain('hunter2');
  });

  it('type-checks a TypeScript consumer against the installed declarations and exports map', async () => {
    writeFileSync(
      join(app, 'check.ts'),
      `import { IngestProducer, DeliveryError, BufferFullError, PartialSendError, EventValidationError, ConfigError, KafkaConnectError, KafkaAuthorizationError, type CostMetricInput, type ProducerOptions } from '@kafka-clickhouse-ingest/producer';
const options: ProducerOptions = { brokers: ['127.0.0.1:9092'], security: { securityProtocol: 'SASL_SSL', saslMechanism: 'PLAIN' } };
const event: CostMetricInput = { customer_id: '123e4567-e89b-12d3-a456-426614174000', cloud_provider: 'aws', service_name: 'ec2', instance_id: 'i-1', instance_type: 'm5', region: 'eu', cost_per_hour: 1, utilization_percent: 2, is_spot: 0, is_reserved: 0 };
export const errors = [DeliveryError, BufferFullError, PartialSendError, EventValidationError, ConfigError, KafkaConnectError, KafkaAuthorizationError];
export async function main(): Promise<void> {
  const sdk = await IngestProducer.connect(options);
  await sdk.emitCostMetrics([event]);
  // @ts-expect-error a field the event type does not have
  await sdk.emitCostMetrics([{ ...event, colour: 'red' }]);
}
`,
    );
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(root, 'node_modules/@types')] }, files: ['check.ts'] }));
    // This repository's compiler and Node types; the app has neither.
    const tsc = await run(join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: app, timeout: 120_000 }).then(
      () => '',
      (err: { stdout?: string }) => err.stdout ?? String(err),
    );
    expect(tsc).toBe('');
  });
});
