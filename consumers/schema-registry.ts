import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { RetriableError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { AvroRecordSchema } from '@kafka-clickhouse-ingest/producer/schemas/avro-types.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { readSchemaId } from '@kafka-clickhouse-ingest/producer/schemas/confluent-framing.js';
import type { SchemaLookup } from '@kafka-clickhouse-ingest/producer/schemas/schema-lookup.js';
import { registryErrorMessage, registryStatusOf, withRegistryTimeout } from '@kafka-clickhouse-ingest/producer/schema-registry-client.js';

/** The registry refused the worker's credentials at start-up: fix the settings, not a retry. */
export class RegistryAuthError extends Error {
  override readonly name = 'RegistryAuthError';
}

/** What the start-up check found for one topic's subject. */
export interface SubjectCheck {
  topic: string;
  subject: string;
  /** The latest schema's id, when the subject has one. */
  latestId?: number;
  version?: number;
  /** Whether the latest schema resolves into the event type's reader schema; its reason when not. */
  resolvable?: boolean;
  problem?: string;
}

/**
 * The worker's registry-backed schema lookup for Confluent-framed messages (00 | schema id | Avro).
 *
 * The decode stage is synchronous, a registry fetch is not: so the ids of a fetched batch are
 * resolved before the batch is queued for decoding (ConsumerMember.eachBatch), and the decode
 * stage then finds every id in the SchemaLookup (getRegistered). What a fetch can end in:
 *  - the schema: learned into the lookup, resolved against the event type's reader schema;
 *  - the registry has no such id (404), or it is not an Avro record of a known event type:
 *    the id is refused, and its messages are poison letters (`unknown_schema_id`) naming why;
 *  - anything else (registry down, 5xx, timeouts, 401 after start-up): RetriableError. The
 *    partition waits (nothing is dead-lettered, nothing committed) and tries again: Kafka is
 *    the buffer, as for a ClickHouse outage.
 * Single-object messages never reach the registry, and ids once learned are never fetched again,
 * so a registry outage stops only messages with a schema id this worker has not seen.
 */
export class RegistrySchemas {
  constructor(
    private readonly client: SchemaRegistry,
    private readonly lookup: SchemaLookup,
    private readonly log: Logger,
    /** ingest_schema_registry_lookups_total (lib/metrics.ts); unset in tests that do not count. */
    private readonly lookups?: { inc(labels: { outcome: 'learned' | 'refused' | 'failed' }): void },
  ) {}

  /** The Confluent-framed ids among `values` that the lookup does not know yet; undefined when none (the common case). */
  missingIds(messages: Iterable<{ value: Buffer | null }>): Set<number> | undefined {
    let missing: Set<number> | undefined;
    for (const { value } of messages) {
      // The first byte of a single-object message is C3: one comparison per message.
      if (value === null || value[0] !== 0) continue;
      const id = readSchemaId(value);
      if (id === null || this.lookup.hasRegistered(id)) continue;
      (missing ??= new Set()).add(id);
    }
    return missing;
  }

  /** Fetches and learns each id; throws RetriableError when the registry could not say. */
  async resolve(ids: Iterable<number>): Promise<void> {
    for (const id of ids) {
      if (this.lookup.hasRegistered(id)) continue;
      let schema: unknown;
      try {
        schema = await withRegistryTimeout(this.client.getSchema(id), `schema id ${id}`);
      } catch (err) {
        if (registryStatusOf(err) === 404) {
          const why = `schema id ${id} is not in the schema registry (${registryErrorMessage(err)})`;
          this.lookup.refuseRegistered(id, why);
          this.lookups?.inc({ outcome: 'refused' });
          this.log.warn('schema id unknown to the registry: its messages are dead-lettered', { schemaId: id, detail: why });
          continue;
        }
        this.lookups?.inc({ outcome: 'failed' });
        throw new RetriableError(`schema registry lookup of schema id ${id} failed: ${registryErrorMessage(err)}`, { cause: err });
      }
      const avro = avroRecordOf(schema);
      const entry = avro ? this.lookup.learnRegistered(id, avro) : this.lookup.refuseRegistered(id, `schema id ${id} is not an Avro record schema`);
      this.lookups?.inc({ outcome: 'refused' in entry ? 'refused' : 'learned' });
      if ('refused' in entry) this.log.warn('schema id refused: its messages are dead-lettered', { schemaId: id, detail: entry.refused });
      else this.log.info('learned a writer schema from the registry', { schemaId: id, eventType: entry.eventType.name });
    }
  }

  /**
   * The start-up check: for each topic, its subject (`<topic>-value`, TopicNameStrategy) and
   * whether the registry's latest schema is one this worker can read. Throws RegistryAuthError
   * when the registry refuses our credentials; other failures are reported per subject (the
   * worker starts: single-object messages need no registry, and Kafka holds the rest).
   */
  async checkSubjects(typeOfTopic: ReadonlyMap<string, EventType>): Promise<SubjectCheck[]> {
    const checks: SubjectCheck[] = [];
    for (const [topic] of typeOfTopic) {
      const subject = `${topic}-value`;
      const check: SubjectCheck = { topic, subject };
      checks.push(check);
      try {
        const id = await withRegistryTimeout(this.client.getLatestSchemaId(subject), `subject ${subject}`);
        check.latestId = id;
        await this.resolve([id]);
        const entry = this.lookup.getRegistered(id);
        check.resolvable = entry !== undefined && !('refused' in entry);
        if (entry && 'refused' in entry) check.problem = entry.refused;
      } catch (err) {
        const status = registryStatusOf(err instanceof RetriableError ? err.cause : err);
        if (status === 401 || status === 403) throw new RegistryAuthError(registryErrorMessage(err instanceof RetriableError ? err.cause : err));
        check.problem = status === 404 ? 'no schema registered under this subject yet' : `could not ask the registry: ${err instanceof RetriableError ? err.message : registryErrorMessage(err)}`;
      }
    }
    return checks;
  }
}

/** The JSON of an Avro record schema from the client's parsed schema (an avsc Type), or undefined. */
function avroRecordOf(schema: unknown): AvroRecordSchema | undefined {
  const type = schema as { typeName?: unknown; schema?: (opts?: object) => unknown } | null;
  if (!type || typeof type.schema !== 'function' || type.typeName !== 'record') return undefined;
  // exportAttrs keeps logical types and defaults: resolution needs the defaults of added fields.
  return type.schema({ exportAttrs: true }) as AvroRecordSchema;
}
