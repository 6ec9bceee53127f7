/**
 * Type-level mapping from an Avro schema literal (`as const`) to the TypeScript
 * type of its datum. The schema object is the single source of truth: the
 * `.avsc` files in `schemas/avro/` are generated from it (`npm run schemas:export`)
 * and the row types used by the SDK and the worker are derived from it here, so
 * there is no hand-kept twin that can drift.
 */

export interface AvroField {
  readonly name: string;
  readonly type: AvroSchema;
  readonly doc?: string;
  readonly default?: unknown;
}

export interface AvroRecordSchema {
  readonly type: 'record';
  readonly name: string;
  readonly namespace?: string;
  readonly doc?: string;
  readonly fields: readonly AvroField[];
}

export type AvroPrimitive = 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'string' | 'bytes';

export interface AvroLogical {
  readonly type: 'int' | 'long' | 'string' | 'bytes';
  readonly logicalType: string;
}

export type AvroSchema = AvroPrimitive | AvroLogical | readonly AvroSchema[] | AvroRecordSchema;

/** TypeScript type of a datum of schema S, as avsc encodes and decodes it. */
export type AvroValue<S> = S extends 'null'
  ? null
  : S extends 'boolean'
    ? boolean
    : S extends 'int' | 'long' | 'float' | 'double'
      ? number
      : S extends 'string'
        ? string
        : S extends 'bytes'
          ? Buffer
          : S extends { readonly logicalType: string; readonly type: infer B }
            ? AvroValue<B>
            : S extends readonly (infer U)[]
              ? AvroValue<U>
              : S extends AvroRecordSchema
                ? AvroRecord<S>
                : never;

/** The decoded record: every field present, with its Avro type. */
export type AvroRecord<S extends AvroRecordSchema> = {
  -readonly [F in S['fields'][number] as F['name']]: AvroValue<F['type']>;
};
