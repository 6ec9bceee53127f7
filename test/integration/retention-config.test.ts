import { describe, expect, it } from 'vitest';
import { IngestWorker } from '../../consumers/worker.js';
import { queryRows, testConfig } from '../helpers/stack.js';

describe('retention settings', () => {
  it('the worker applies LLM_LOGS_TTL_DAYS / AGENT_ACTIONS_TTL_DAYS to the log tables at start', async () => {
    const config = testConfig({ retention: { llmLogsDays: 7, agentActionsDays: 0 }, consumer: { eventTypes: ['llm_logs'] } });
    const worker = await IngestWorker.start(config);
    try {
      const rows = await queryRows<{ name: string; engine_full: string }>(
        worker.clickhouse,
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND name IN ('llm_logs', 'agent_actions') ORDER BY name",
      );
      const ttl = Object.fromEntries(rows.map((r) => [r.name, /TTL (.*?)(SETTINGS|$)/.exec(r.engine_full)?.[1]?.trim() ?? null]));
      expect(ttl).toEqual({ agent_actions: null, llm_logs: 'toDateTime(timestamp) + toIntervalDay(7)' });
    } finally {
      await worker.stop();
    }
  });
});
