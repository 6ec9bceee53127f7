import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Admin } from 'kafkajs';
import { eventTypes as allEventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { CommandFailure, EXIT_CODES, EXIT_OK, parseCommandLine, registerSecret, runCommand, UsageError } from '../lib/cli.js';
import { loadConfig, type Config } from '../lib/config.js';

/**
 * `npm run topics -- create`: creates the topic of every event type (prefix + name) with its
 * partitions, replication factor and retention, as an operator's one-off step (the Kubernetes
 * Job deploy/k8s/topics-job.yaml runs it; the workers there have KAFKA_CREATE_TOPICS=false).
 * Idempotent: a topic that exists is left exactly as it is and reported, with a note when its
 * partition count differs from the one asked for (Kafka can add partitions, never remove them,
 * and adding them moves keys between partitions: an operator's decision, docs/operations.md).
 */
export const USAGE = `usage: npm run topics -- create [--partitions <n>] [--replication-factor <n>] [--retention-hours <h>|forever] [--event-types all|<a,b>] [--dry-run]
  Creates the topic of each event type (KAFKA_TOPIC_PREFIX + event type) that does not exist yet.
  Existing topics are left unchanged and reported. Safe to run again.
  --partitions <n>            partitions of a new topic (1-10000); default KAFKA_TOPIC_PARTITIONS (4)
  --replication-factor <n>    replicas of each partition (1-10); default KAFKA_REPLICATION_FACTOR (1)
  --retention-hours <h>       how long Kafka keeps messages (retention.ms); default 168 (7 days);
                              "forever" keeps them until deleted by hand
  --event-types all|<a,b>     which event types; default INGEST_EVENT_TYPES (all)
  --dry-run                   print what would be created, without connecting
  -h, --help                  this text
  Kafka connection (KAFKA_BROKERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*) from the
  environment, as the worker: docs/configuration.md.
${EXIT_CODES}`;

export interface TopicPlan {
  topics: string[];
  partitions: number;
  replicationFactor: number;
  /** retention.ms; -1 keeps messages forever. */
  retentionMs: number;
}

const MS_PER_HOUR = 3_600_000;

function wholeNumber(flag: string, value: string | undefined, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** Parses and checks the command line against the configuration; throws UsageError. Connects to nothing. */
export function planTopics(argv: readonly string[], config: Pick<Config, 'kafka' | 'consumer'>): { plan: TopicPlan; dryRun: boolean } {
  const { values, positionals } = parseCommandLine(
    argv,
    {
      partitions: { type: 'string' },
      'replication-factor': { type: 'string' },
      'retention-hours': { type: 'string' },
      'event-types': { type: 'string' },
      'dry-run': { type: 'boolean' },
    },
    true,
  );
  const [sub, ...extra] = positionals;
  if (sub === undefined) throw new UsageError('missing subcommand (create)');
  if (sub !== 'create') throw new UsageError(`unknown subcommand ${JSON.stringify(sub)} (known: create)`);
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);

  const partitions = wholeNumber('--partitions', values.partitions, 1, 10_000, config.kafka.topicPartitions);
  const replicationFactor = wholeNumber('--replication-factor', values['replication-factor'], 1, 10, config.kafka.replicationFactor);
  const retention = values['retention-hours'];
  let retentionMs = 168 * MS_PER_HOUR;
  if (retention === 'forever') retentionMs = -1;
  else if (retention !== undefined) {
    const hours = Number(retention);
    if (!/^\d+(\.\d+)?$/.test(retention) || !(hours > 0) || hours > 24 * 366 * 100) throw new UsageError(`--retention-hours must be a number of hours above 0 (or "forever"), got ${JSON.stringify(retention)}`);
    retentionMs = Math.round(hours * MS_PER_HOUR);
  }

  const known = allEventTypes.map((t) => t.name);
  const selection = values['event-types'] === undefined ? config.consumer.eventTypes : values['event-types'] === 'all' ? 'all' : values['event-types'].split(',').map((s) => s.trim()).filter(Boolean);
  const names = selection === 'all' ? known : selection;
  const unknown = names.filter((n) => !known.includes(n));
  if (names.length === 0 || unknown.length > 0) throw new UsageError(`unknown event type(s) ${unknown.join(', ') || '(none given)'}; known: ${known.join(', ')}`);

  return { plan: { topics: names.map((n) => `${config.kafka.topicPrefix}${n}`), partitions, replicationFactor, retentionMs }, dryRun: values['dry-run'] === true };
}

export interface TopicOutcome {
  topic: string;
  created: boolean;
  /** Partitions of the topic now (asked for, when created). */
  partitions: number;
}

/** Creates the missing topics of `plan`; existing ones are only described. */
export async function createTopics(admin: Admin, plan: TopicPlan): Promise<TopicOutcome[]> {
  const existing = new Set(await admin.listTopics());
  const missing = plan.topics.filter((t) => !existing.has(t));
  if (missing.length > 0) {
    const { createTopicsWithLeaders } = await import('../lib/kafka.js');
    // Another run (a second Job pod, a worker with KAFKA_CREATE_TOPICS=true) may create some of
    // them in between: those exist then, which is all this command promises.
    await createTopicsWithLeaders(
      admin,
      missing.map((topic) => ({
        topic,
        numPartitions: plan.partitions,
        replicationFactor: plan.replicationFactor,
        configEntries: [{ name: 'retention.ms', value: String(plan.retentionMs) }],
      })),
    );
  }
  const meta = await admin.fetchTopicMetadata({ topics: plan.topics });
  const partitionsOf = new Map(meta.topics.map((t) => [t.name, t.partitions.length]));
  return plan.topics.map((topic) => ({ topic, created: !existing.has(topic), partitions: partitionsOf.get(topic) ?? 0 }));
}

const retentionText = (ms: number) => (ms < 0 ? 'forever' : `${ms / MS_PER_HOUR} h`);

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const config = loadConfig(env);
  const { plan, dryRun } = planTopics(argv, config);
  const settings = `${plan.partitions} partitions, replication factor ${plan.replicationFactor}, retention ${retentionText(plan.retentionMs)}`;
  if (dryRun) {
    for (const t of plan.topics) console.log(`would create  ${t} (when missing)`);
    console.log(`${plan.topics.length} topics, ${settings}; nothing contacted (--dry-run)`);
    return EXIT_OK;
  }
  registerSecret(config.kafka.saslPassword);
  // kafkajs warns at every connection retry: right for a worker's log, noise in front of a
  // command's one-line failure. LOG_LEVEL=warn brings them back.
  process.env.LOG_LEVEL ||= 'error';
  // Loaded after the arguments and the configuration are checked.
  const { createKafka } = await import('../lib/kafka.js');
  const admin = createKafka(config.kafka, '-topics').admin();
  try {
    try {
      await admin.connect();
    } catch (err) {
      throw new CommandFailure(`cannot reach Kafka at ${config.kafka.brokers.join(',')}: ${(err as Error).message}`);
    }
    const outcomes = await createTopics(admin, plan);
    for (const o of outcomes) {
      if (o.created) console.log(`created  ${o.topic} (${settings})`);
      else {
        const note = o.partitions === plan.partitions ? '' : `; asked for ${plan.partitions}, see docs/operations.md "Adding partitions and workers"`;
        console.log(`exists   ${o.topic} (${o.partitions} partitions; left unchanged${note})`);
      }
    }
    const created = outcomes.filter((o) => o.created).length;
    console.log(`${created} created, ${outcomes.length - created} already existed`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  return EXIT_OK;
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  await runCommand('topics', USAGE, (argv) => main(argv));
}
