import type { ClickHouseClient } from '@clickhouse/client';
import { Consumer } from '@platformatic/kafka';
import type { Admin } from 'kafkajs';
import type { Config } from '../lib/config.js';
import { platformaticClientOptions, type OAuthBearerProvider } from '../lib/kafka.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import type { SchemaLookup } from '@kafka-clickhouse-ingest/producer/schemas/schema-lookup.js';
import type { RegistrySchemas } from './schema-registry.js';
import type { Logger } from '../lib/logger.js';
import { decodeMessage } from './decode-stage.js';
import type { CommittedOffset } from './partition-ledger.js';
import { rowEncoderFor } from './row-encoder.js';

/**
 * Where to resume a partition the consumer group holds no committed offset for (offsets expired
 * after `offsets.retention.minutes`, the group deleted or renamed, or the topic deleted and
 * created again: Kafka drops the group's offsets with the topic).
 *
 * Without this, kafkajs starts such a partition from the log start and every row the table
 * already holds is inserted again under new batch cuts, whose deduplication tokens ClickHouse
 * has never seen: duplicates. Every row carries `_kafka_topic`, `_kafka_partition` and
 * `_kafka_offset`, so the table knows how far it got; but a topic deleted and created again is
 * a new log whose offsets restart at 0, and the rows of the old log must not hide it.
 *
 * How "same log" is decided: the row the table holds at the highest offset is compared with the
 * record the log holds at that offset, by content. Why this and not Kafka's topic id:
 * - the rows do not carry the topic id, so a topic id stored on the side (a small table) could
 *   only say which log was seen last, not which rows came from it. After a recreation the table
 *   holds rows of both logs at the same offsets, and a stored id would have to be kept right at
 *   every assignment and every recreation under a running worker (state that can go stale);
 * - the comparison needs no state and no migration: it reads what is there. The log's record is
 *   decoded and encoded into the same TabSeparated line the worker inserts, and ClickHouse parses
 *   that line with the table's own column types (`format()`), so equal rows are equal exactly
 *   (no float or DateTime formatting in JavaScript), and the two sides are compared by hash.
 *
 * The decision errs towards reading again (duplicates, as before) and never towards skipping:
 * - no row of the topic-partition within the log's current offsets: the log start;
 * - the row at the highest such offset is the log's record there: that offset + 1;
 * - it is not (another incarnation's row, or this log's record there is poison): the log start.
 *   This re-reads in one rare case: the topic was recreated, partly consumed, then its offsets
 *   were lost too, while the older incarnation reached further than the new one has.
 * Identical content at the same offset counts as the same record: the table already holds it.
 */

/** The partition log's offsets as Kafka reports them: `earliest` the log start, `latest` the high watermark (next offset). */
export interface LogBounds {
  readonly earliest: number;
  readonly latest: number;
}

/** What the decision reads; `resumePosition` builds it from ClickHouse and Kafka, unit tests from fakes. */
export interface ResumeSources {
  logBounds(): Promise<LogBounds>;
  /** Highest `_kafka_offset` the table holds for the topic-partition in [from, to), or undefined. */
  highestStoredOffset(from: number, to: number): Promise<number | undefined>;
  /** Whether a row the table holds at `offset` is the log's record at `offset` (false when the log has none there, or it is poison). */
  storedRowIsLogRecord(offset: number): Promise<boolean>;
}

/** The offset to resume from: see the module comment. No I/O of its own. */
export async function decideResumePosition(sources: ResumeSources): Promise<number> {
  const { earliest, latest } = await sources.logBounds();
  if (latest <= earliest) return earliest;
  // Offsets outside the log's current range say nothing about this log: below it, retention
  // deleted them (nothing to compare); at or above its end, they are another incarnation's.
  const highest = await sources.highestStoredOffset(earliest, latest);
  if (highest === undefined) return earliest;
  return (await sources.storedRowIsLogRecord(highest)) ? highest + 1 : earliest;
}

/** Reads single records of a partition log by offset. */
export interface LogRecordReader {
  /** The value of the record at `offset`; undefined when the log has no record there (deleted, compacted, a control record). */
  valueAt(topic: string, partition: number, offset: number): Promise<Buffer | null | undefined>;
  close(): Promise<void>;
}

export interface ResumeDeps {
  clickhouse: ClickHouseClient;
  /** For the log's bounds (`fetchTopicOffsets`): the worker's kafkajs admin. */
  admin: Pick<Admin, 'fetchTopicOffsets'>;
  records: LogRecordReader;
  lookup: SchemaLookup;
  /** Resolves a Confluent-framed record's schema id before it is decoded; its failure is retriable (thrown). */
  registry?: RegistrySchemas;
}

export interface ResumeTarget {
  topic: string;
  partition: number;
  /** The topic's event type: its table and how its records become rows. */
  eventType: EventType;
}

/**
 * The offset to resume `partition` of `topic` from when the group has no committed offset for
 * it. Call it only then (committed offset -1 at assignment): a committed offset is always right.
 * Throws when Kafka or ClickHouse cannot be read (retriable: ask again, do not fall back to the
 * log start, which would duplicate).
 */
export async function resumePosition(deps: ResumeDeps, target: ResumeTarget): Promise<number> {
  return decideResumePosition(resumeSources(deps, target));
}

export function resumeSources(deps: ResumeDeps, { topic, partition, eventType }: ResumeTarget): ResumeSources {
  const table = eventType.table;
  const where = '_kafka_topic = {topic:String} AND _kafka_partition = {partition:UInt32}';
  return {
    async logBounds() {
      const offsets = await deps.admin.fetchTopicOffsets(topic);
      const p = offsets.find((o) => o.partition === partition);
      if (!p) throw new Error(`${topic} has no partition ${partition}`);
      return { earliest: Number(p.low), latest: Number(p.high) };
    },
    async highestStoredOffset(from, to) {
      const rs = await deps.clickhouse.query({
        query: `SELECT count() AS n, max(_kafka_offset) AS highest FROM ${table} WHERE ${where} AND _kafka_offset >= {from:UInt64} AND _kafka_offset < {to:UInt64}`,
        query_params: { topic, partition, from, to },
        format: 'JSONEachRow',
      });
      const [row] = await rs.json<{ n: string | number; highest: string | number }>();
      return row && Number(row.n) > 0 ? Number(row.highest) : undefined;
    },
    async storedRowIsLogRecord(offset) {
      const value = await deps.records.valueAt(topic, partition, offset);
      if (value === undefined) return false;
      const missing = deps.registry?.missingIds([{ value }]);
      if (missing) await deps.registry!.resolve(missing);
      let record: Record<string, unknown>;
      try {
        record = decodeMessage(deps.lookup, eventType, value);
      } catch {
        return false; // poison: the worker never wrote a row for it
      }
      const encoder = rowEncoderFor(eventType);
      const line = encoder.encode({ topic, partition, rows: [{ offset, record, bytes: 0 }] }).replace(/\n$/, '');
      const types = await columnTypes(deps.clickhouse, table, encoder.columns);
      const columns = encoder.columns.map(quoteIdentifier).join(', ');
      const structure = encoder.columns.map((c) => `${quoteIdentifier(c)} ${types.get(c)}`).join(', ');
      const rs = await deps.clickhouse.query({
        query:
          `SELECT count() AS n FROM ${table} WHERE ${where} AND _kafka_offset = {offset:UInt64} ` +
          `AND cityHash64(${columns}) IN (SELECT cityHash64(${columns}) FROM format(TabSeparated, ${quoteString(structure)}, ${quoteString(line + '\n')}))`,
        query_params: { topic, partition, offset },
        format: 'JSONEachRow',
      });
      const [row] = await rs.json<{ n: string | number }>();
      return Number(row?.n ?? 0) > 0;
    },
  };
}

async function columnTypes(client: ClickHouseClient, table: string, columns: readonly string[]): Promise<Map<string, string>> {
  const rs = await client.query({
    query: 'SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {table:String}',
    query_params: { table },
    format: 'JSONEachRow',
  });
  const types = new Map((await rs.json<{ name: string; type: string }>()).map((c) => [c.name, c.type] as const));
  const missing = columns.filter((c) => !types.has(c));
  if (missing.length > 0) throw new Error(`table ${table} has no column(s) ${missing.join(', ')}`);
  return types;
}

const quoteIdentifier = (name: string): string => `\`${name.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
const quoteString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/**
 * Reads records by offset with @platformatic/kafka's Fetch (no consumer group is joined): kafkajs
 * 2.2.4 has no fetch outside a group. Fetch v13+ names the topic by its topic id, which Metadata
 * v10+ returns; a recreated topic has a new id, and the metadata is asked afresh at each read.
 */
export function platformaticRecordReader(config: Config['kafka'], oauthBearerProvider?: OAuthBearerProvider): LogRecordReader {
  const consumer = new Consumer({
    ...platformaticClientOptions(config, 'resume', oauthBearerProvider),
    groupId: `${config.clientId}-resume-unused`, // required by the client; never joined
  });
  return {
    async valueAt(topic, partition, offset) {
      const metadata = await consumer.metadata({ topics: [topic], forceUpdate: true });
      const t = metadata.topics.get(topic);
      const leader = t?.partitions[partition]?.leader;
      if (!t || leader === undefined) throw new Error(`no metadata for ${topic}[${partition}]`);
      const response = await consumer.fetch({
        node: leader,
        maxWaitTime: 0,
        topics: [{ topicId: t.id, partitions: [{ partition, fetchOffset: BigInt(offset), partitionMaxBytes: 4 * 1024 * 1024, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] }],
      });
      for (const topicResponse of response.responses) {
        for (const p of topicResponse.partitions) {
          if (p.partitionIndex !== partition) continue;
          if (p.errorCode !== 0) throw new Error(`fetch of ${topic}[${partition}] at ${offset}: Kafka error code ${p.errorCode}`);
          for (const batch of p.records ?? []) {
            if (batch.attributes & 0x20) continue; // a control batch (transaction marker) holds no value
            for (const r of batch.records) {
              if (batch.firstOffset + BigInt(r.offsetDelta) === BigInt(offset)) return r.value;
            }
          }
        }
      }
      return undefined;
    },
    close: () => consumer.close(),
  };
}

/**
 * Reads what Kafka holds for the group on one topic, per partition, as the partitions' ledgers
 * start from it: the committed offset and its metadata, or, where there is none, where the table
 * says to resume (resumePosition).
 *
 * "None" includes kafkajs's own reset: when the committed offset is below the log start
 * (retention deleted records, among them possibly the first of the range the metadata named),
 * kafkajs commits its default offset (-2, earliest) over it, metadata and all
 * (consumerGroup.js → offsetManager.setDefaultOffset), before this reads anything. The named
 * range can then no longer be re-formed, and what is left of it must not be batched again under
 * new cuts: resuming above the rows the table holds of this log is what prevents that.
 * Throws when Kafka or ClickHouse cannot be read (the caller retries at the next fetch).
 */
export function committedOffsetReader(deps: ResumeDeps & { admin: Pick<Admin, 'fetchTopicOffsets' | 'fetchOffsets'> }, groupId: string, typeOfTopic: ReadonlyMap<string, EventType>, log: Logger): (topic: string) => Promise<ReadonlyMap<number, CommittedOffset>> {
  return async (topic) => {
    const [t] = await deps.admin.fetchOffsets({ groupId, topics: [topic] });
    const eventType = typeOfTopic.get(topic);
    if (!eventType) throw new Error(`topic ${topic} is not consumed by this worker`);
    const entries = await Promise.all(
      (t?.partitions ?? []).map(async (p): Promise<readonly [number, CommittedOffset]> => {
        const committed = Number(p.offset);
        if (committed >= 0) return [p.partition, { offset: committed, metadata: p.metadata }];
        const offset = await resumePosition(deps, { topic, partition: p.partition, eventType });
        if (offset > 0) log.info('no committed offset: resuming above the rows the table holds', { topic, partition: p.partition, offset });
        return [p.partition, { offset, metadata: null }];
      }),
    );
    return new Map(entries);
  };
}
