import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigResourceTypes, type Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, createTopicsWithLeaders } from '../../lib/kafka.js';
import { testConfig, uniqueId } from '../helpers/stack.js';

/**
 * `npm run topics -- create` (cli/topics.ts) on the real broker, as the Kubernetes Job runs it:
 * it creates the missing topics with the partitions, replication and retention asked for, and
 * leaves an existing topic exactly as it was (reported, with the partition difference noted).
 * A second run creates nothing.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const prefix = uniqueId('topics');
const config = testConfig({ kafka: { topicPrefix: `${prefix}.` } });
let admin: Admin;

function topicsCli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'cli/topics.ts', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', KAFKA_BROKERS: config.kafka.brokers.join(','), KAFKA_TOPIC_PREFIX: `${prefix}.`, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

async function retentionMs(topic: string): Promise<string | undefined> {
  const d = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }] });
  return d.resources[0]!.configEntries.find((e) => e.configName === 'retention.ms')?.configValue;
}

beforeAll(async () => {
  admin = createKafka(config.kafka, '-topics-test').admin();
  await admin.connect();
  // An operator's existing topic, with settings the command must not touch.
  await createTopicsWithLeaders(admin, [{ topic: `${prefix}.cost_metrics`, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }]);
});

afterAll(async () => {
  const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
  if (mine.length > 0) await admin.deleteTopics({ topics: mine }).catch(() => undefined);
  await admin.disconnect();
});

describe('npm run topics -- create, on the real broker', () => {
  it('creates the missing topics as asked, leaves the existing one alone, and is idempotent', async () => {
    const args = ['create', '--event-types', 'cost_metrics,llm_logs,agent_actions', '--partitions', '3', '--retention-hours', '2'];
    const first = topicsCli(args);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toContain(`exists   ${prefix}.cost_metrics (1 partitions; left unchanged; asked for 3,`);
    expect(first.stdout).toContain(`created  ${prefix}.llm_logs (3 partitions, replication factor 1, retention 2 h)`);
    expect(first.stdout).toContain(`created  ${prefix}.agent_actions (3 partitions, replication factor 1, retention 2 h)`);
    expect(first.stdout.trimEnd().split('\n').at(-1)).toBe('2 created, 1 already existed');

    const meta = await admin.fetchTopicMetadata({ topics: [`${prefix}.cost_metrics`, `${prefix}.llm_logs`, `${prefix}.agent_actions`] });
    expect(Object.fromEntries(meta.topics.map((t) => [t.name, t.partitions.length]))).toEqual({ [`${prefix}.cost_metrics`]: 1, [`${prefix}.llm_logs`]: 3, [`${prefix}.agent_actions`]: 3 });
    expect(await retentionMs(`${prefix}.llm_logs`)).toBe(String(2 * 3_600_000));
    expect(await retentionMs(`${prefix}.cost_metrics`)).toBe('3600000'); // untouched
    // Only the event types asked for.
    expect((await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`)).sort()).toEqual([`${prefix}.agent_actions`, `${prefix}.cost_metrics`, `${prefix}.llm_logs`]);

    const again = topicsCli(args);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout.trimEnd().split('\n').at(-1)).toBe('0 created, 3 already existed');
  }, 120_000);

  it('fails in one line, exit 1, when the broker cannot be reached', () => {
    const r = topicsCli(['create'], { KAFKA_BROKERS: '127.0.0.1:1', KAFKA_RETRY_MAX_MS: '100' });
    expect(r.status).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toEqual(['topics: cannot reach Kafka at 127.0.0.1:1: Connection error: connect ECONNREFUSED 127.0.0.1:1']);
  }, 60_000);
});
