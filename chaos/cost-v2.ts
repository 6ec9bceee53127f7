import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { defineEventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';

/**
 * Version 2 of the cost schema, as a rolling upgrade brings it: one field added with a default
 * (a compatible writer schema). A worker built with schemas/ alone does not know its
 * fingerprint and dead-letters its events as `unknown_fingerprint`; the upgraded fault worker
 * (CHAOS_SCHEMA=v2) knows both versions. The same definition as test/integration/dead-letters.test.ts.
 */
export const costV2 = defineEventType({
  ...costMetrics,
  schema: {
    ...costMetrics.schema,
    fields: [...costMetrics.schema.fields, { name: 'discount_percent', type: 'double', default: 0, doc: 'Discount applied, 0-100.' }],
  },
  previousSchemas: [costMetrics.schema],
});

/** The column the upgrade's migration adds for it. */
export const COST_V2_MIGRATION = 'ALTER TABLE cost_metrics_ts ADD COLUMN IF NOT EXISTS discount_percent Float64 DEFAULT 0';
