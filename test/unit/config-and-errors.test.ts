import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, editDistance, loadConfig, nearestSetting } from '../../lib/config.js';
import { classifyClickHouseError, PoisonError, RetriableError } from '../../lib/errors.js';
import { crc64Avro } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('loadConfig', () => {
  it('documents its defaults and freezes the result', () => {
    const c = loadConfig({});
    expect(c.batch).toEqual({ maxRows: 50_000, maxBytes: 16 * 1024 * 1024, maxWaitMs: 1_000 });
    expect(c.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(c.clickhouse.url).toBeUndefined();
    expect(Object.isFrozen(c) && Object.isFrozen(c.batch)).toBe(true);
  });

  it('reads environment variables and lets overrides win', () => {
    const c = loadConfig({ KAFKA_BROKERS: 'a:1, b:2', BATCH_MAX_ROWS: '500', DLQ_RETRY_WORKER: 'false' }, { batch: { maxWaitMs: 50 } });
    expect(c.kafka.brokers).toEqual(['a:1', 'b:2']);
    expect(c.batch.maxRows).toBe(500);
    expect(c.batch.maxWaitMs).toBe(50);
    expect(c.deadLetter.runRetryWorker).toBe(false);
  });

  it('rejects bad values with the setting and its variable named, all at once', () => {
    let error: unknown;
    try {
      loadConfig({ BATCH_MAX_ROWS: '0', KAFKA_TOPIC_PREFIX: 'bad prefix!', CLICKHOUSE_URL: 'not a url', INGEST_CONCURRENCY: 'many' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/batch\.maxRows \(env BATCH_MAX_ROWS\)/);
    expect(message).toMatch(/kafka\.topicPrefix \(env KAFKA_TOPIC_PREFIX\)/);
    expect(message).toMatch(/clickhouse\.url \(env CLICKHOUSE_URL\)/);
    expect(message).toMatch(/consumer\.concurrency \(env INGEST_CONCURRENCY\)/);
  });

  it('rejects unknown INGEST_ variables (typos) and non-boolean booleans', () => {
    expect(() => loadConfig({ INGEST_CONCURENCY: '2' })).toThrow(/INGEST_CONCURENCY: unknown setting/);
    expect(() => loadConfig({ DLQ_RETRY_WORKER: 'yes' })).toThrow(/DLQ_RETRY_WORKER: expected true, false, 1 or 0/);
  });
});

describe('loadConfig rules', () => {
  const problems = (env: Record<string, string>, overrides = {}): string => {
    try {
      loadConfig(env, overrides);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error(`accepted ${JSON.stringify(env)}`);
  };

  it('brokers are host:port, port 1-65535, IPv6 in brackets; the error names KAFKA_BROKERS', () => {
    expect(loadConfig({ KAFKA_BROKERS: 'kafka-1.example:9092,10.0.0.7:19092,[::1]:9092,[fe80::1]:1' }).kafka.brokers).toHaveLength(4);
    expect(problems({ KAFKA_BROKERS: ':::' })).toContain('kafka.brokers.0 (env KAFKA_BROKERS): ":::" is not host:port');
    expect(problems({ KAFKA_BROKERS: 'kafka' })).toContain('"kafka" is not host:port');
    expect(problems({ KAFKA_BROKERS: 'a:1,:9092' })).toContain('kafka.brokers.1 (env KAFKA_BROKERS): ":9092" is not host:port');
    expect(problems({ KAFKA_BROKERS: 'a:0' })).toContain('"a:0": port must be from 1 to 65535');
    expect(problems({ KAFKA_BROKERS: 'a:65536' })).toContain('port must be from 1 to 65535');
    expect(problems({ KAFKA_BROKERS: '::1:9092' })).toContain('is not host:port');
    expect(problems({ KAFKA_BROKERS: 'kafka://a:9092' })).toContain('is not host:port');
    expect(problems({}, { kafka: { brokers: ['a:x'] } })).toMatch(/^ {2}- kafka\.brokers\.0: "a:x" is not host:port/m);
  });

  it('an unknown variable under any of our prefixes is refused, naming the nearest setting', () => {
    const cases: Array<[string, string]> = [
      ['BATCH_MAXROWS', 'BATCH_MAX_ROWS'],
      ['KAFKA_BROKER', 'KAFKA_BROKERS'],
      ['INSERT_MAX_BACKOF_MS', 'INSERT_MAX_BACKOFF_MS'],
      ['REDIS_ULR', 'REDIS_URL'],
      ['CLICKHOUSE_DATABSE', 'CLICKHOUSE_DATABASE'],
      ['INGEST_CONCURENCY', 'INGEST_CONCURRENCY'],
      ['METRICS_PROT', 'METRICS_PORT'],
      ['DLQ_ATTEMTPS', 'DLQ_ATTEMPTS'],
      ['DEAD_LETTER_MAX_LETTERS', 'DLQ_MAX_LETTERS'],
      ['CHDB_PATHS', 'CHDB_PATH'],
      ['MAX_BUFFERED_BYTE', 'MAX_BUFFERED_BYTES'],
      ['SHUTDOWN_TIMEOUT', 'SHUTDOWN_TIMEOUT_MS'],
      ['KAFKA_SASL_PASSWORD_FLIE', 'KAFKA_SASL_PASSWORD_FILE'],
    ];
    for (const [typo, nearest] of cases) {
      expect(problems({ [typo]: '5' }), typo).toContain(`${typo}: unknown setting; did you mean ${nearest}?`);
      expect(nearestSetting(typo)).toBe(nearest);
    }
    expect(editDistance('BATCH_MAXROWS', 'BATCH_MAX_ROWS')).toBe(1);
    expect(editDistance('ab', 'ba')).toBe(1);
  });

  it('accepts the variables the project itself sets that are not settings, and Kubernetes service links', () => {
    const env = {
      KAFKA_PORT: '9092', KAFKA_CONTROLLER_PORT: '9093', KAFKA_SECURE_PORT: '9094', KAFKA_HEAP: '512m', KAFKA_DATA_DIR: '/d', KAFKA_CACHE_DIR: '/c', REDIS_PORT: '6380',
      KAFKA_HEAP_OPTS: '-Xmx1g', KAFKA_OPTS: '-Dx=y', INGEST_PRODUCER_CLIENT: 'platformatic', INGEST_PRODUCER_COMPRESSION: 'zstd', INGEST_PYTHON: '/usr/bin/python3', INGEST_FLUSH_AT_EXIT: '0',
      QUERY_WORKER_URL: 'http://127.0.0.1:9464',
      INGEST_WORKER_SERVICE_HOST: '10.0.0.1', INGEST_WORKER_SERVICE_PORT: '9464', INGEST_WORKER_SERVICE_PORT_METRICS: '9464', INGEST_WORKER_PORT: 'tcp://10.0.0.1:9464',
      INGEST_WORKER_PORT_9464_TCP: 'tcp://10.0.0.1:9464', INGEST_WORKER_PORT_9464_TCP_ADDR: '10.0.0.1', REDIS_SERVICE_HOST: '10.0.0.2',
      // Unrelated variables with a prefix that is not ours, and an empty one (counts as unset).
      MAX_OLD_SPACE: '1', LAG: '1', BATCH_MAXROWS: '',
    };
    expect(loadConfig(env).batch.maxRows).toBe(50_000);
    // A _PORT that is not a service link's tcp:// value is still a typo.
    expect(problems({ METRICS_PORTS: '9464' })).toContain('did you mean METRICS_PORT?');
  });

  it('cross-field rules name both settings and their variables', () => {
    expect(problems({ INSERT_INITIAL_BACKOFF_MS: '500', INSERT_MAX_BACKOFF_MS: '100' })).toContain(
      'insert.maxBackoffMs (env INSERT_MAX_BACKOFF_MS): 100 must be at least insert.initialBackoffMs (env INSERT_INITIAL_BACKOFF_MS) = 500',
    );
    expect(problems({ INSERT_MAX_BACKOFF_MS: '100' })).toContain('insert.maxBackoffMs (env INSERT_MAX_BACKOFF_MS): 100 must be at least insert.initialBackoffMs = 200');
    expect(problems({ DLQ_BACKOFF_MS: '5000', DLQ_MAX_BACKOFF_MS: '1000' })).toContain('deadLetter.maxBackoffMs (env DLQ_MAX_BACKOFF_MS): 1000 must be at least deadLetter.backoffMs (env DLQ_BACKOFF_MS) = 5000');
    expect(problems({ DLQ_STOP_INITIAL_PAUSE_MS: '60000', DLQ_STOP_MAX_PAUSE_MS: '1000' })).toContain('deadLetter.stopMaxPauseMs (env DLQ_STOP_MAX_PAUSE_MS): 1000 must be at least');
    expect(problems({ INGEST_HEARTBEAT_INTERVAL_MS: '8000' })).toContain('consumer.heartbeatIntervalMs (env INGEST_HEARTBEAT_INTERVAL_MS): 8000 must be less than consumer.sessionTimeoutMs = 8000');
    expect(problems({ STUCK_AFTER_MS: '2000', LAG_INTERVAL_MS: '5000' })).toContain('metrics.stuckAfterMs (env STUCK_AFTER_MS): 2000 must be greater than metrics.lagIntervalMs (env LAG_INTERVAL_MS) = 5000');
    expect(problems({}, { insert: { initialBackoffMs: 10, maxBackoffMs: 5 } })).toContain('insert.maxBackoffMs: 5 must be at least insert.initialBackoffMs = 10');
    // Equal bounds are fine; a batch larger than the memory budget is allowed (it seals by rows or age).
    expect(loadConfig({ INSERT_INITIAL_BACKOFF_MS: '100', INSERT_MAX_BACKOFF_MS: '100', MAX_BUFFERED_BYTES: '1048576' }).insert.maxBackoffMs).toBe(100);
  });

  it('INGEST_INSTANCE_ID: unset by default; a value that cannot be part of a Kafka client id is refused, naming the variable', () => {
    expect(loadConfig({}).consumer.instanceId).toBeUndefined();
    expect(loadConfig({ INGEST_INSTANCE_ID: 'ingest-worker-7d9f8c6b5-x2x7k' }).consumer.instanceId).toBe('ingest-worker-7d9f8c6b5-x2x7k');
    expect(problems({ INGEST_INSTANCE_ID: 'pod a' })).toContain('consumer.instanceId (env INGEST_INSTANCE_ID)');
    expect(problems({ INGEST_INSTANCE_ID: 'pod a' })).toContain('letters, digits');
    expect(problems({ INGEST_INSTANCE_ID: 'x'.repeat(101) })).toContain('consumer.instanceId (env INGEST_INSTANCE_ID)');
  });

  it('the default REDIS_URL is the project Redis of scripts/services.sh (REDIS_PORT 6380 in scripts/env.sh)', () => {
    const envSh = readFileSync(join(root, 'scripts/env.sh'), 'utf8');
    const port = /REDIS_PORT="\$\{REDIS_PORT:-(\d+)\}"/.exec(envSh)?.[1];
    expect(port).toBe('6380');
    expect(envSh).toContain('REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"');
    expect(loadConfig({}).redis.url).toBe(`redis://127.0.0.1:${port}`);
  });
});

describe('classifyClickHouseError', () => {
  it('splits failures into retriable, poison and fatal', () => {
    expect(classifyClickHouseError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe('retriable');
    expect(classifyClickHouseError(Object.assign(new Error('Too many parts'), { code: '252' }))).toBe('retriable');
    expect(classifyClickHouseError(Object.assign(new Error('Timeout exceeded'), { code: '159' }))).toBe('retriable');
    expect(classifyClickHouseError(Object.assign(new Error('Cannot parse input'), { code: '27' }))).toBe('poison');
    expect(classifyClickHouseError(Object.assign(new Error('Cannot parse UUID'), { code: 376 }))).toBe('poison');
    expect(classifyClickHouseError(new RetriableError('x'))).toBe('retriable');
    expect(classifyClickHouseError(new PoisonError('undecodable', 'x'))).toBe('poison');
    expect(classifyClickHouseError(new TypeError('bug'))).toBe('fatal');
  });

  it('treats everything from outside the process that it does not recognise as retriable: Kafka holds the rows, no crash loop', () => {
    // Issue 13: these were fatal (a crash loop) before.
    expect(classifyClickHouseError(Object.assign(new Error('Code: 243. NOT_ENOUGH_SPACE'), { code: '243' }))).toBe('retriable');
    for (const code of ['394', '236', '439', '60', '99999']) expect(classifyClickHouseError(Object.assign(new Error(`Code: ${code}.`), { code }))).toBe('retriable');
    // chDB's errors carry the ClickHouse code as clickhouseCode (their `code` is a CHDB_* name).
    expect(classifyClickHouseError(Object.assign(new Error('Code: 27. Cannot parse input'), { code: 'CHDB_INSERT', clickhouseCode: 27 }))).toBe('poison');
    expect(classifyClickHouseError(Object.assign(new Error('Code: 243.'), { code: 'CHDB_INSERT', clickhouseCode: 243 }))).toBe('retriable');
    // A proxy's error page instead of ClickHouse's answer.
    expect(classifyClickHouseError(new Error('<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>'))).toBe('retriable');
    expect(classifyClickHouseError({ message: 'weird' })).toBe('retriable');
    // Our own bugs still stop the worker.
    expect(classifyClickHouseError(new RangeError('Invalid array length'))).toBe('fatal');
    expect(classifyClickHouseError(new ReferenceError('x is not defined'))).toBe('fatal');
    expect(classifyClickHouseError(undefined)).toBe('fatal');
  });
});

describe('CRC-64-AVRO', () => {
  it('matches the Avro specification test vector for "int" (LE bytes 8f5c393f1ad57572)', () => {
    const out = Buffer.alloc(8);
    out.writeBigUInt64LE(crc64Avro(Buffer.from('"int"')));
    expect(out.toString('hex')).toBe('8f5c393f1ad57572');
  });
});

describe('0/1 flags', () => {
  it('the SDK refuses a flag outside 0..1, naming the field; the worker treats such a decoded value as invalid', async () => {
    const { toEventRecord, checkEventRecord } = await import('@kafka-clickhouse-ingest/producer/schemas/validate-event.js');
    const { costMetrics } = await import('@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js');
    const { costEvents } = await import('../helpers/cost-events.js');
    const event = costEvents(1)[0]!;
    expect(() => toEventRecord(costMetrics, { ...event, is_spot: 2 }, 0)).toThrow(/cost_metrics\[0\]\.is_spot: expected a value from 0 to 1, got 2/);
    expect(() => checkEventRecord(costMetrics, { ...toEventRecord(costMetrics, event), is_reserved: 300 })).toThrow(/is_reserved/);
  });
});

describe('loadConfig overrides', () => {
  it('rejects a misspelt key inside a section, and labels override errors without an env name', () => {
    expect(() => loadConfig({}, { batch: { maxRow: 5 } as never })).toThrow(/batch: Unrecognized key/);
    let message = '';
    try {
      loadConfig({}, { batch: { maxRows: 0 } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/batch\.maxRows: /);
    expect(message).not.toMatch(/env BATCH_MAX_ROWS/);
  });
});
