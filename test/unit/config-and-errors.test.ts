import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../lib/config.js';
import { classifyClickHouseError, PoisonError, RetriableError } from '../../lib/errors.js';
import { crc64Avro } from '../../schemas/wire-format.js';

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
    const { toEventRecord, checkEventRecord } = await import('../../schemas/validate-event.js');
    const { costMetrics } = await import('../../schemas/cost-metrics.js');
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
