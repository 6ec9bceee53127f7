import type { AvroSchema } from '@kafka-clickhouse-ingest/producer/schemas/avro-types.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import type { InsertBatch } from './types.js';

/** Columns the worker adds to every row: where the row came from, for audits of duplicates. */
export const KAFKA_COLUMNS = ['_kafka_topic', '_kafka_partition', '_kafka_offset'] as const;

/**
 * Encodes rows of one event type as ClickHouse TabSeparated text.
 *
 * Why TabSeparated: ClickHouse parses it faster than JSONEachRow, and writing it here needs no
 * object per row: the decoded records are read as they are and the `_kafka_*` columns come
 * from the batch. The per-row code is generated once per event type (straight-line property
 * reads, no per-field closure calls), because this runs for every row the worker inserts.
 * Escaping: backslash, tab, newline, CR and NUL inside strings; `\N` is NULL. Timestamps (epoch
 * ms) are written as seconds with a fraction, which DateTime64(3) columns read exactly.
 */
export interface RowEncoder {
  readonly columns: readonly string[];
  /** One line per row, each ending in "\n". */
  encode(batch: InsertBatch): string;
  /**
   * The inverse for one line (without its newline; the `_kafka_*` cells are ignored): the record
   * the line was written from. Used only to dead-letter rows ClickHouse refused, so it favours
   * plainness over speed. Exact: numbers were written as JavaScript prints them, so parsing them
   * gives the same doubles, and timestamps as whole milliseconds.
   */
  decode(line: string): Record<string, unknown>;
}

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0' };
const NEEDS_ESCAPE = /[\\\t\n\r\0]/;
export const escapeTsv = (s: string): string => (NEEDS_ESCAPE.test(s) ? s.replace(/[\\\t\n\r\0]/g, (c) => ESCAPES[c]!) : s);

export function msToSeconds(ms: number): string {
  const frac = ((ms % 1000) + 1000) % 1000;
  return `${(ms - frac) / 1000}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

/** A JS expression (over the variable `v`) that renders one value of `schema` as a TSV cell. */
function cellExpression(schema: AvroSchema): string {
  if (Array.isArray(schema)) {
    const branch = schema.find((s) => s !== 'null');
    return branch === undefined ? `'\\\\N'` : `(v === null || v === undefined ? '\\\\N' : ${cellExpression(branch as AvroSchema)})`;
  }
  if (typeof schema === 'object' && 'logicalType' in schema) {
    if (schema.logicalType === 'timestamp-millis') return 'msToSeconds(v)';
    return cellExpression(schema.type);
  }
  switch (schema) {
    case 'string':
      return 'escapeTsv(v)';
    case 'boolean':
      return `(v ? 'true' : 'false')`;
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return `('' + v)`;
    default:
      throw new Error(`row-encoder: no TabSeparated encoding for Avro type ${JSON.stringify(schema)}`);
  }
}

const UNESCAPES: Record<string, string> = { '\\': '\\', t: '\t', n: '\n', r: '\r', '0': '\0' };
const unescapeTsv = (s: string): string => (s.includes('\\') ? s.replace(/\\(.)/g, (_, c: string) => UNESCAPES[c] ?? c) : s);

/** Reads one TSV cell of `schema` back into the value row-encoder.ts wrote it from. */
function cellDecoder(schema: AvroSchema): (cell: string) => unknown {
  if (Array.isArray(schema)) {
    const branch = schema.find((s) => s !== 'null');
    if (branch === undefined) return () => null;
    const inner = cellDecoder(branch as AvroSchema);
    return (cell) => (cell === '\\N' ? null : inner(cell));
  }
  if (typeof schema === 'object' && 'logicalType' in schema) {
    if (schema.logicalType === 'timestamp-millis') {
      return (cell) => {
        const [whole, frac = '0'] = cell.split('.');
        return Number(whole) * 1000 + Number(frac);
      };
    }
    return cellDecoder(schema.type);
  }
  switch (schema) {
    case 'string':
      return unescapeTsv;
    case 'boolean':
      return (cell) => cell === 'true';
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return Number;
    default:
      throw new Error(`row-encoder: no TabSeparated decoding for Avro type ${JSON.stringify(schema)}`);
  }
}

const encoders = new WeakMap<EventType, RowEncoder>();

/** The row encoder of `type`, generated once per process and shared by every stage that needs it. */
export function rowEncoderFor(type: EventType): RowEncoder {
  let encoder = encoders.get(type);
  if (!encoder) encoders.set(type, (encoder = createRowEncoder(type)));
  return encoder;
}

export function createRowEncoder(type: EventType): RowEncoder {
  const lines = type.schema.fields.map((f) => `v = x[${JSON.stringify(f.name)}]; out += ${cellExpression(f.type)} + '\\t';`);
  // Field names come from our own schema definitions (JSON-quoted above), never from input.
  const encodeRows = new Function(
    'escapeTsv',
    'msToSeconds',
    `return function encode(batch) {
      const tail = escapeTsv(batch.topic) + '\\t' + batch.partition + '\\t';
      let out = '';
      let v;
      for (const row of batch.rows) {
        const x = row.record;
        ${lines.join('\n        ')}
        out += tail + row.offset + '\\n';
      }
      return out;
    };
    //# sourceURL=generated:consumers/row-encoder.ts/${type.name}`,
  )(escapeTsv, msToSeconds) as (batch: InsertBatch) => string;
  const fields = type.schema.fields.map((f) => ({ name: f.name, read: cellDecoder(f.type) }));
  const decode = (line: string): Record<string, unknown> => {
    const cells = line.split('\t');
    if (cells.length !== fields.length + KAFKA_COLUMNS.length) throw new Error(`row-encoder: a ${type.name} line has ${cells.length} cells, expected ${fields.length + KAFKA_COLUMNS.length}`);
    const record: Record<string, unknown> = {};
    fields.forEach((f, i) => (record[f.name] = f.read(cells[i]!)));
    return record;
  };
  return { columns: [...type.fieldNames, ...KAFKA_COLUMNS], encode: encodeRows, decode };
}
