import type { AvroSchema } from '@kafka-clickhouse-ingest/producer/schemas/avro-types.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';

export interface TableColumn {
  name: string;
  type: string;
  /** system.columns.default_kind: '' when the column has no DEFAULT/MATERIALIZED/ALIAS. */
  default_kind: string;
}

/**
 * 0/1 flag fields the seed declares as UInt8. Avro `int` cannot say "0 or 1", so these are the
 * only int fields allowed into UInt8 columns (values outside 0..255 would not fit).
 */
const FLAG_FIELDS = new Set(['is_spot', 'is_reserved', 'hallucination_detected']);

function baseAvro(schema: AvroSchema): { type: string; nullable: boolean } {
  if (Array.isArray(schema)) {
    const branches = schema.filter((s) => s !== 'null');
    if (branches.length !== 1) return { type: `union(${JSON.stringify(schema)})`, nullable: true };
    return { type: baseAvro(branches[0] as AvroSchema).type, nullable: schema.includes('null') };
  }
  if (typeof schema === 'object' && 'logicalType' in schema) return { type: `${schema.type}/${schema.logicalType}`, nullable: false };
  return { type: typeof schema === 'string' ? schema : 'record', nullable: false };
}

/** ClickHouse column types (LowCardinality and Nullable unwrapped) that hold every value of an Avro type. */
const ALLOWED: Record<string, readonly string[]> = {
  string: ['String'],
  'string/uuid': ['UUID', 'String'],
  'long/timestamp-millis': ["DateTime64(3, 'UTC')"],
  long: ['Int64'],
  int: ['Int32', 'Int64'],
  double: ['Float64'],
  float: ['Float32', 'Float64'],
  boolean: ['Bool', 'UInt8'],
};

function unwrap(type: string): { type: string; nullable: boolean } {
  let t = type;
  let nullable = false;
  for (;;) {
    const m = /^(LowCardinality|Nullable)\((.*)\)$/.exec(t);
    if (!m) return { type: t, nullable };
    if (m[1] === 'Nullable') nullable = true;
    t = m[2]!;
  }
}

/**
 * Problems between an event type's Avro schema and the columns of its table: a field without a
 * column, a column type that cannot hold the field's values (or loses its nulls), and a column
 * without a default that no field fills. Empty when they agree.
 */
export function schemaTableProblems(type: EventType, columns: readonly TableColumn[]): string[] {
  const problems: string[] = [];
  const byName = new Map(columns.map((c) => [c.name, c]));
  for (const field of type.schema.fields) {
    const col = byName.get(field.name);
    if (!col) {
      problems.push(`${type.name}.${field.name}: no column ${field.name} in ${type.table}`);
      continue;
    }
    const avro = baseAvro(field.type);
    const ch = unwrap(col.type);
    const allowed = [...(ALLOWED[avro.type] ?? []), ...(avro.type === 'int' && FLAG_FIELDS.has(field.name) ? ['UInt8', 'Bool'] : [])];
    if (!allowed.includes(ch.type)) problems.push(`${type.name}.${field.name}: Avro ${avro.type} does not fit column type ${col.type} (allowed: ${allowed.join(', ') || 'none'})`);
    if (avro.nullable && !ch.nullable) problems.push(`${type.name}.${field.name}: Avro field is nullable but column ${col.type} is not (nulls would become defaults)`);
  }
  const fields = new Set(type.fieldNames);
  for (const col of columns) {
    if (col.default_kind === '' && !fields.has(col.name)) problems.push(`${type.table}.${col.name}: column has no default and no field of ${type.name} fills it`);
  }
  return problems;
}
