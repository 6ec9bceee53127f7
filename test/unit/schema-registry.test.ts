import { describe, expect, it } from 'vitest';
import { decodeMessage } from '../../consumers/decode-stage.js';
import { RegistryAuthError, RegistrySchemas } from '../../consumers/schema-registry.js';
import { ConfigError, loadConfig } from '../../lib/config.js';
import { PoisonError, RetriableError } from '../../lib/errors.js';
import { createLogger } from '../../lib/logger.js';
import { EventProducer, type ProducerTransport } from '@kafka-clickhouse-ingest/producer';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { confluentHeader, readSchemaId } from '@kafka-clickhouse-ingest/producer/schemas/confluent-framing.js';
import { defineEventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { SchemaLookup } from '@kafka-clickhouse-ingest/producer/schemas/schema-lookup.js';
import { encodeSingleObject, SingleObjectEncoder } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import { toEventRecord } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { registrySchemaText } from '@kafka-clickhouse-ingest/producer/schema-registration.js';
import { withRegistryTimeout } from '@kafka-clickhouse-ingest/producer/schema-registry-client.js';
import avsc from 'avsc';
import { costEvents } from '../helpers/cost-events.js';

const log = createLogger({ component: 'test' }, 'error');
const record = toEventRecord(costMetrics, costEvents(1, 7, Date.UTC(2026, 10, 1))[0]);
const confluent = (id: number, type = costMetrics.avroType, datum: unknown = record) => Buffer.concat([confluentHeader(id), type.toBuffer(datum)]);

const costV2 = defineEventType({
  ...costMetrics,
  schema: { ...costMetrics.schema, fields: [...costMetrics.schema.fields, { name: 'discount_percent', type: 'double', default: 0, doc: 'added' }] },
});

/** A registry client double: getSchema and getLatestSchemaId answer from a map, or throw what `fail` says. */
function fakeClient(schemas: Record<number, unknown>, latest: Record<string, number> = {}, fail?: () => unknown) {
  const calls: number[] = [];
  return {
    calls,
    client: {
      async getSchema(id: number) {
        calls.push(id);
        if (fail) throw fail();
        if (!(id in schemas)) throw Object.assign(new Error('Confluent_Schema_Registry - Schema not found'), { status: 404 });
        return avsc.Type.forSchema(schemas[id] as avsc.Schema);
      },
      async getLatestSchemaId(subject: string) {
        if (fail) throw fail();
        if (!(subject in latest)) throw Object.assign(new Error('Confluent_Schema_Registry - Subject not found'), { status: 404 });
        return latest[subject]!;
      },
    } as never,
  };
}

describe('Confluent framing', () => {
  it('is 00, the id big-endian, then the datum; the first byte tells it from single-object', () => {
    expect(confluentHeader(0x01020304)).toEqual(Buffer.from([0, 1, 2, 3, 4]));
    expect(readSchemaId(confluent(77))).toBe(77);
    expect(readSchemaId(encodeSingleObject(costMetrics.avroType, costMetrics.fingerprint, record))).toBeNull();
    expect(() => confluentHeader(2 ** 32)).toThrow(RangeError);
  });

  it('the encoder writes the same bytes behind either header', () => {
    const enc = new SingleObjectEncoder(64);
    const a = enc.encodeWithHeader(costMetrics.avroType, confluentHeader(5), record);
    expect(a).toEqual(confluent(5));
  });

  it('registry schema text: the same JSON, with no "{}" string left for Apicurio 2.x to mangle', () => {
    for (const type of eventTypes) {
      const text = registrySchemaText(type.schema);
      expect(text).not.toContain('"{}"');
      expect(JSON.parse(text)).toEqual(type.schema);
    }
  });
});

describe('decodeMessage with registry ids', () => {
  it('decodes an id the lookup learned, v2 writer into the v1 reader, and keeps single-object as it was', async () => {
    const lookup = new SchemaLookup([costMetrics]);
    const reg = new RegistrySchemas(fakeClient({ 1: costMetrics.schema, 2: costV2.schema }).client, lookup, log);
    await reg.resolve([1, 2]);
    expect(decodeMessage(lookup, costMetrics, confluent(1))).toEqual(record);
    expect(decodeMessage(lookup, costMetrics, confluent(2, costV2.avroType, { ...record, discount_percent: 9 }))).toEqual(record);
    expect(decodeMessage(lookup, costMetrics, encodeSingleObject(costMetrics.avroType, costMetrics.fingerprint, record))).toEqual(record);
  });

  it('an id never looked up (no registry) and an id the registry lacks are unknown_schema_id letters, with the reason', async () => {
    const lookup = new SchemaLookup([costMetrics]);
    const poison = (v: Buffer) => {
      try {
        decodeMessage(lookup, costMetrics, v);
      } catch (err) {
        expect(err).toBeInstanceOf(PoisonError);
        return { reason: (err as PoisonError).reason, message: (err as Error).message };
      }
      throw new Error('not poison');
    };
    expect(poison(confluent(9))).toEqual({ reason: 'unknown_schema_id', message: 'schema id 9: Confluent framing, and this worker has no schema registry (set SCHEMA_REGISTRY_URL)' });
    const reg = new RegistrySchemas(fakeClient({ 3: { type: 'record', name: 'Other', fields: [] }, 4: { type: 'string' } }).client, lookup, log);
    await reg.resolve([9, 3, 4]);
    expect(poison(confluent(9))).toEqual({ reason: 'unknown_schema_id', message: 'schema id 9 is not in the schema registry (HTTP 404: Schema not found)' });
    expect(poison(confluent(3))).toEqual({ reason: 'unknown_schema_id', message: 'schema id 3 is record Other, which no event type of this worker reads' });
    expect(poison(confluent(4))).toEqual({ reason: 'unknown_schema_id', message: 'schema id 4 is not an Avro record schema' });
    expect(poison(Buffer.from([7, 7, 7]))).toMatchObject({ reason: 'undecodable' });
  });
});

describe('RegistrySchemas', () => {
  it('asks only for ids it does not know, once each, and only of Confluent-framed messages', async () => {
    const lookup = new SchemaLookup([costMetrics]);
    const fake = fakeClient({ 1: costMetrics.schema });
    const reg = new RegistrySchemas(fake.client, lookup, log);
    const single = encodeSingleObject(costMetrics.avroType, costMetrics.fingerprint, record);
    expect(reg.missingIds([{ value: single }, { value: null }])).toBeUndefined();
    const missing = reg.missingIds([{ value: confluent(1) }, { value: confluent(1) }, { value: single }]);
    expect([...missing!]).toEqual([1]);
    await reg.resolve(missing!);
    expect(reg.missingIds([{ value: confluent(1) }])).toBeUndefined();
    expect(fake.calls).toEqual([1]);
  });

  it('a registry that fails (down, 5xx) is a RetriableError and nothing is cached', async () => {
    const lookup = new SchemaLookup([costMetrics]);
    const reg = new RegistrySchemas(fakeClient({}, {}, () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })).client, lookup, log);
    await expect(reg.resolve([1])).rejects.toThrow(RetriableError);
    await expect(reg.resolve([1])).rejects.toThrow('schema registry lookup of schema id 1 failed: connect ECONNREFUSED 127.0.0.1:1');
    expect(lookup.hasRegistered(1)).toBe(false);
  });

  it('a registry that accepts and never answers is given up after the timeout', async () => {
    await expect(withRegistryTimeout(new Promise(() => undefined), 'schema id 7', 20)).rejects.toThrow('schema id 7: no answer from the schema registry within 20 ms');
    await expect(withRegistryTimeout(Promise.resolve(3), 'x', 20)).resolves.toBe(3);
  });

  it('the start-up check reports each subject, and refused credentials throw RegistryAuthError', async () => {
    const lookup = new SchemaLookup([costMetrics, costV2]);
    const topics = new Map([['ingest.cost_metrics', costMetrics]]);
    const ok = new RegistrySchemas(fakeClient({ 5: costV2.schema }, { 'ingest.cost_metrics-value': 5 }).client, lookup, log);
    expect(await ok.checkSubjects(topics)).toEqual([{ topic: 'ingest.cost_metrics', subject: 'ingest.cost_metrics-value', latestId: 5, resolvable: true }]);
    const none = new RegistrySchemas(fakeClient({}).client, new SchemaLookup([costMetrics]), log);
    expect(await none.checkSubjects(topics)).toEqual([{ topic: 'ingest.cost_metrics', subject: 'ingest.cost_metrics-value', problem: 'no schema registered under this subject yet' }]);
    const refused = new RegistrySchemas(fakeClient({}, {}, () => Object.assign(new Error('Confluent_Schema_Registry - Unauthorized'), { status: 401 })).client, new SchemaLookup([costMetrics]), log);
    await expect(refused.checkSubjects(topics)).rejects.toThrow(RegistryAuthError);
    await expect(refused.checkSubjects(topics)).rejects.toThrow('the schema registry refused our credentials (HTTP 401): Unauthorized');
  });
});

describe('registry settings', () => {
  it('SCHEMA_REGISTRY_* load into schemaRegistry, with their rules, and never echo a secret', () => {
    const c = loadConfig({ SCHEMA_REGISTRY_URL: 'https://registry:8081', SCHEMA_REGISTRY_USERNAME: 'key', SCHEMA_REGISTRY_PASSWORD: 'hunter2-secret' });
    expect(c.schemaRegistry).toEqual({ url: 'https://registry:8081', username: 'key', password: 'hunter2-secret' });
    const refused = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refused({ SCHEMA_REGISTRY_URL: 'http://r:8081', SCHEMA_REGISTRY_PASSWORD: 'hunter2-secret' })).toContain('schemaRegistry.username (env SCHEMA_REGISTRY_USERNAME) and schemaRegistry.password (env SCHEMA_REGISTRY_PASSWORD) go together (basic auth)');
    expect(refused({ SCHEMA_REGISTRY_URL: 'http://r:8081', SCHEMA_REGISTRY_TOKEN: 'tok-secret-1', SCHEMA_REGISTRY_USERNAME: 'k', SCHEMA_REGISTRY_PASSWORD: 'hunter2-secret' })).toContain('not both');
    expect(refused({ SCHEMA_REGISTRY_URL: 'http://u:hunter2-secret@r:8081' })).not.toContain('hunter2-secret');
    expect(refused({ SCHEMA_REGISTRY_TOKEN: 'tok-secret-1' })).toContain('schemaRegistry.url (env SCHEMA_REGISTRY_URL) is required with the other registry settings');
    expect(refused({ SCHEMA_REGISTRY_URLL: 'http://r:8081' })).toContain('SCHEMA_REGISTRY_URLL: unknown setting; did you mean SCHEMA_REGISTRY_URL?');
  });

  it('the SDK refuses wireFormat confluent without a registry, before connecting', async () => {
    await expect(EventProducer.connect({ wireFormat: 'confluent' })).rejects.toThrow(/wireFormat 'confluent' needs a schema registry: SCHEMA_REGISTRY_URL \(or ProducerOptions.schemaRegistry.url\)/);
    await expect(EventProducer.connect({ wireFormat: 'protobuf' as never })).rejects.toThrow(RangeError);
    const transport = {} as ProducerTransport;
    expect(EventProducer.fromTransport(transport).wireFormat).toBe('single-object');
  });
});
