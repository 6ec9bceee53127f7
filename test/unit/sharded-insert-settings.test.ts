import type { ClickHouseClient } from '@clickhouse/client';
import { describe, expect, it } from 'vitest';
import { clickHouseInserter } from '../../consumers/clickhouse-inserter.js';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { DISTRIBUTED_INSERT_SETTINGS } from '../../sql/ddl.js';
import type { EncodedRows } from '../../consumers/types.js';

/** The inserter's settings on a ClickHouse server client (not embedded: no raw path). */
function capturingClient(): { client: ClickHouseClient; settings: Array<Record<string, unknown>> } {
  const settings: Array<Record<string, unknown>> = [];
  const client = {
    insert: async (params: { clickhouse_settings: Record<string, unknown> }) => {
      settings.push(params.clickhouse_settings);
      return { summary: { written_rows: '1' } };
    },
  } as unknown as ClickHouseClient;
  return { client, settings };
}

const rows: EncodedRows = { topic: 't', partition: 0, format: 'TabSeparated', body: Buffer.from('x\n'), count: 1, ends: [2], offsets: [0], timestamps: [Number.NaN] };

describe('the inserter in the sharded layout', () => {
  it('sends distributed_foreground_insert=1 with the deduplication token when given the Distributed settings', async () => {
    const { client, settings } = capturingClient();
    await clickHouseInserter(client, [costMetrics], DISTRIBUTED_INSERT_SETTINGS)(costMetrics.table, rows, 'tok');
    expect(settings[0]).toMatchObject({ distributed_foreground_insert: 1, insert_deduplication_token: 'tok', async_insert: 0 });
  });

  it('deduplicates in the hourly rollups too: deduplicate_blocks_in_dependent_materialized_views=1 with every token, in every layout', async () => {
    const { client, settings } = capturingClient();
    await clickHouseInserter(client, [costMetrics])(costMetrics.table, rows, 'tok');
    await clickHouseInserter(client, [costMetrics], DISTRIBUTED_INSERT_SETTINGS)(costMetrics.table, rows, 'tok');
    for (const s of settings) expect(s).toMatchObject({ insert_deduplicate: 1, insert_deduplication_token: 'tok', deduplicate_blocks_in_dependent_materialized_views: 1 });
  });

  it('sends no Distributed setting on a single server', async () => {
    const { client, settings } = capturingClient();
    await clickHouseInserter(client, [costMetrics])(costMetrics.table, rows, 'tok');
    expect(settings[0]).not.toHaveProperty('distributed_foreground_insert');
  });
});
