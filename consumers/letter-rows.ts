import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { rowBinaryCodecFor } from './row-binary.js';
import { rowEncoderFor } from './row-encoder.js';
import type { EncodedRows, InsertBatch } from './types.js';

/**
 * The conversions between a batch's rows and the rows a dead letter stores: a refused row is
 * kept decoded with its `_kafka_*` coordinates, so a replay after a table fix can insert it.
 */

/** Flat rows with their `_kafka_*` columns: how a failed batch is stored in the dead-letter queue. */
export function toLetterRows(batch: InsertBatch): Record<string, unknown>[] {
  return batch.rows.map((r) => ({ ...r.record, _kafka_topic: batch.topic, _kafka_partition: batch.partition, _kafka_offset: r.offset }));
}

/** Reads encoded rows of `type` back into records (from their bytes, in the body's format) for the dead-letter queue. */
export function decodedRows(rows: EncodedRows, type: EventType): InsertBatch {
  const start = (i: number) => (i === 0 ? 0 : rows.ends[i - 1]!);
  const read =
    rows.format === 'RowBinary'
      ? (i: number) => rowBinaryCodecFor(type).decode(rows.body, start(i), rows.ends[i]!)
      : // Each line without its newline.
        (i: number) => rowEncoderFor(type).decode(rows.body.toString('utf8', start(i), rows.ends[i]! - 1));
  return { topic: rows.topic, partition: rows.partition, rows: rows.offsets.map((offset, i) => ({ offset, record: read(i), bytes: 0 })) };
}

/** The inverse of toLetterRows, for the retry worker. */
export function fromLetterRows(topic: string, partition: number, rows: readonly Record<string, unknown>[]): InsertBatch {
  return { topic, partition, rows: rows.map((record) => ({ offset: Number(record._kafka_offset ?? 0), record, bytes: 0 })) };
}
