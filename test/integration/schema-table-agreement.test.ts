import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClickHouse } from '../../lib/clickhouse.js';
import type { AvroRecordSchema } from '@kafka-clickhouse-ingest/producer/schemas/avro-types.js';
import { defineEventType, type EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { migrate } from '../../sql/migrate.js';
import { schemaTableProblems, type TableColumn } from '../helpers/schema-agreement.js';

/**
 * Every event type's Avro schema agrees with its table as the migrations create it, so a schema
 * change cannot ship without its migration (and vice versa). Uses the embedded engine: the column
 * types are read back from system.columns, not parsed from SQL.
 */
let client: ClickHouseClient;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'schema-agreement-'));
  client = await openClickHouse({ dataPath: dir, database: 'ingest', requestTimeoutMs: 60_000 });
  await migrate(client);
});

afterAll(async () => {
  await client?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function columns(table: string): Promise<TableColumn[]> {
  const r = await client.query({
    query: 'SELECT name, type, default_kind FROM system.columns WHERE database = currentDatabase() AND table = {t:String} ORDER BY position',
    query_params: { t: table },
    format: 'JSONEachRow',
  });
  return r.json<TableColumn>();
}

describe('Avro schema ↔ table columns', () => {
  for (const type of eventTypes) {
    it(`${type.name} → ${type.table}`, async () => {
      const cols = await columns(type.table);
      expect(cols.length, `table ${type.table} exists`).toBeGreaterThan(0);
      expect(schemaTableProblems(type, cols)).toEqual([]);
    });
  }

  it('reports a field added without a migration, a wrong type, a lost null and an unfilled column', async () => {
    const base = eventTypes.find((t) => t.name === 'generations')!;
    const schema: AvroRecordSchema = {
      ...base.schema,
      fields: [
        ...base.schema.fields
          .filter((f) => f.name !== 'pareto_size') // column pareto_size now has no field
          .map((f) => (f.name === 'best_score' ? { ...f, type: 'string' as const } : f.name === 'avg_score' ? { ...f, type: ['null', 'double'] as const, default: null } : f)),
        { name: 'median_score', type: 'double', doc: 'new, but no migration' },
      ],
    };
    const drifted = defineEventType({ ...base, schema } as never) as EventType;
    const problems = schemaTableProblems(drifted, await columns(drifted.table));
    expect(problems).toEqual([
      'generations.best_score: Avro string does not fit column type Float64 (allowed: String)',
      'generations.avg_score: Avro field is nullable but column Float64 is not (nulls would become defaults)',
      'generations.median_score: no column median_score in generations',
      'generations.pareto_size: column has no default and no field of generations fills it',
    ]);
  });

  it('an int field into a UInt8 column is refused unless it is a declared 0/1 flag', async () => {
    const cost = eventTypes.find((t) => t.name === 'cost_metrics')!;
    const costCols = await columns(cost.table);
    expect(costCols.find((c) => c.name === 'is_spot')?.type).toBe('UInt8'); // a flag: accepted above
    const perf = eventTypes.find((t) => t.name === 'performance_metrics')!;
    const narrowed = (await columns(perf.table)).map((c) => (c.name === 'batch_size' ? { ...c, type: 'UInt8' } : c));
    expect(schemaTableProblems(perf, narrowed)).toEqual(['performance_metrics.batch_size: Avro int does not fit column type UInt8 (allowed: Int32, Int64)']);
  });
});
