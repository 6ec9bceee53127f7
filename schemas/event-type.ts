import avsc from 'avsc';
import type { AvroRecord, AvroRecordSchema } from './avro-types.js';
import { fingerprintOf } from './wire-format.js';

/**
 * Everything the SDK, the worker and the migrations need to know about one event
 * type, derived from its Avro schema. Naming convention (docs/event-types.md):
 *   topic  = `${topicPrefix}${name}`   e.g. `ingest.cost_metrics`
 *   table  = `table`                   e.g. `cost_metrics_ts`
 * The partition key keeps per-key order: all events of one customer (metrics) or
 * one run (evolution) land in one partition, so they are inserted in emit order.
 */
export interface EventTypeSpec<S extends AvroRecordSchema = AvroRecordSchema> {
  /** Stable name, used in topic names, metrics labels and the CLI. */
  readonly name: string;
  readonly schema: S;
  /** ClickHouse table the worker inserts into. */
  readonly table: string;
  /** Field whose value keys the Kafka message (per-key ordering). */
  readonly partitionKey: FieldName<S>;
  /** Event-time field (epoch ms), used for end-to-end latency and freshness. */
  readonly timestampField: FieldName<S>;
  /** Fields that accept objects in the SDK and are stored as JSON strings. */
  readonly jsonFields?: readonly FieldName<S>[];
  /** Fields the SDK fills when absent: 'now' (epoch ms) or 'uuid' (random UUID v4). */
  readonly autoFields?: Partial<Record<FieldName<S>, 'now' | 'uuid'>>;
  /** Older versions of this schema the worker still decodes (schema evolution). */
  readonly previousSchemas?: readonly AvroRecordSchema[];
}

export type FieldName<S extends AvroRecordSchema> = S['fields'][number]['name'];

/** The decoded record of an event type: what lands in the table. */
export type EventRecord<E extends EventTypeSpec> = AvroRecord<E['schema']>;

type JsonKeys<E extends EventTypeSpec> = NonNullable<E['jsonFields']>[number];
type AutoKeys<E extends EventTypeSpec> = keyof NonNullable<E['autoFields']>;
type TimeKeys<E extends EventTypeSpec> = { [K in keyof EventRecord<E>]: K extends E['timestampField'] ? K : never }[keyof EventRecord<E>];

/**
 * What an `emit…`/`log…` call accepts: JSON fields also take objects, timestamps
 * also take Date or ISO strings, and auto-filled fields may be left out.
 */
export type EventInput<E extends EventTypeSpec> = {
  [K in keyof EventRecord<E> as K extends AutoKeys<E> ? never : K]: K extends JsonKeys<E>
    ? unknown
    : K extends TimeKeys<E>
      ? number | Date | string
      : EventRecord<E>[K];
} & {
  [K in keyof EventRecord<E> as K extends AutoKeys<E> ? K : never]?: K extends TimeKeys<E>
    ? number | Date | string
    : EventRecord<E>[K];
};

/** A compiled event type: the spec plus its avsc types and fingerprints. */
export interface EventType<S extends AvroRecordSchema = AvroRecordSchema> extends EventTypeSpec<S> {
  readonly avroType: avsc.Type;
  /** CRC-64-AVRO fingerprint of the current schema's canonical form, 8 bytes little-endian. */
  readonly fingerprint: Buffer;
  readonly fieldNames: readonly string[];
}

export function defineEventType<const S extends AvroRecordSchema>(spec: EventTypeSpec<S>): EventType<S> {
  const avroType = avsc.Type.forSchema(spec.schema as unknown as avsc.Schema);
  return Object.freeze({
    ...spec,
    avroType,
    fingerprint: fingerprintOf(avroType),
    fieldNames: spec.schema.fields.map((f) => f.name),
  });
}
