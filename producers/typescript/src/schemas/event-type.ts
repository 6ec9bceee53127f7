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
export interface EventTypeSpec<
  S extends AvroRecordSchema = AvroRecordSchema,
  TS extends string = string,
  J extends string = string,
  A extends string = string,
> {
  /** Stable name, used in topic names, metrics labels and the CLI. */
  readonly name: string;
  readonly schema: S;
  /** ClickHouse table the worker inserts into. */
  readonly table: string;
  /** Field whose value keys the Kafka message (per-key ordering). */
  readonly partitionKey: FieldName<S>;
  /** Event-time field (epoch ms), used for end-to-end latency and freshness. */
  readonly timestampField: TS;
  /** Fields that accept objects in the SDK and are stored as JSON strings. */
  readonly jsonFields?: readonly J[];
  /** Fields the SDK fills when absent: 'now' (epoch ms) or 'uuid' (random UUID v4). */
  readonly autoFields?: { readonly [K in A]?: 'now' | 'uuid' };
  /** Older versions of this schema the worker still decodes (schema evolution). */
  readonly previousSchemas?: readonly AvroRecordSchema[];
  /** Inclusive numeric bounds checked by the SDK and the worker, e.g. 0/1 flags stored as UInt8. */
  readonly bounds?: { readonly [field: string]: readonly [min: number, max: number] };
}

export type FieldName<S extends AvroRecordSchema> = S['fields'][number]['name'];

/** The decoded record of an event type: what lands in the table. */
export type EventRecord<E extends EventTypeSpec> = AvroRecord<E['schema']>;

type SpecParts<E> = E extends EventTypeSpec<infer S, infer TS, infer J, infer A> ? { S: S; TS: TS; J: J; A: A } : never;
/** Fields with an Avro default: optional in the SDK. */
type DefaultedKeys<S extends AvroRecordSchema> = Extract<S['fields'][number], { readonly default: unknown }>['name'];
type OptionalKeys<E extends EventTypeSpec> = SpecParts<E>['A'] | DefaultedKeys<E['schema']>;
type InputValue<E extends EventTypeSpec, K> = K extends SpecParts<E>['J']
  ? unknown
  : K extends SpecParts<E>['TS']
    ? number | Date | string
    : K extends keyof EventRecord<E>
      ? EventRecord<E>[K]
      : never;

/**
 * What an `emit…`/`log…` call accepts: JSON fields also take objects, the event-time field
 * also takes a Date or an ISO string, and auto-filled or defaulted fields may be left out.
 */
export type EventInput<E extends EventTypeSpec> = {
  [K in keyof EventRecord<E> as K extends OptionalKeys<E> ? never : K]: InputValue<E, K>;
} & {
  [K in keyof EventRecord<E> as K extends OptionalKeys<E> ? K : never]?: InputValue<E, K>;
};

/** A compiled event type: the spec plus its avsc types and fingerprints. */
export interface EventType<S extends AvroRecordSchema = AvroRecordSchema, TS extends string = string, J extends string = string, A extends string = string>
  extends EventTypeSpec<S, TS, J, A> {
  readonly avroType: avsc.Type;
  /** CRC-64-AVRO fingerprint of the current schema's canonical form, 8 bytes little-endian. */
  readonly fingerprint: Buffer;
  readonly fieldNames: readonly string[];
}

export function defineEventType<
  const S extends AvroRecordSchema,
  const TS extends FieldName<S>,
  const J extends FieldName<S> = never,
  const A extends FieldName<S> = never,
>(spec: EventTypeSpec<S, TS, J, A>): EventType<S, TS, J, A> {
  const avroType = avsc.Type.forSchema(spec.schema as unknown as avsc.Schema);
  return Object.freeze({
    ...spec,
    avroType,
    fingerprint: fingerprintOf(avroType),
    fieldNames: spec.schema.fields.map((f) => f.name),
  });
}
