import { PoisonError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import { retryUntilDone } from '../lib/retry.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { readSchemaId } from '@kafka-clickhouse-ingest/producer/schemas/confluent-framing.js';
import type { DecoderEntry, SchemaLookup } from '@kafka-clickhouse-ingest/producer/schemas/schema-lookup.js';
import { checkEventRecord, EventValidationError } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { readFingerprint } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import { transcoderFor } from './avro-to-tsv.js';
import type { BatchStage } from './batch-stage.js';
import type { DeadLetterSink } from './dead-letter-queue.js';
import type { InsertBody } from './insert-body.js';
import { MessageRejected, type KafkaRecord } from './types.js';

/**
 * Decodes a message of `topic` (whose event type is `expected`) into its record, or throws
 * PoisonError saying why it never can be.
 */
export function decodeMessage(lookup: SchemaLookup, expected: EventType, value: Buffer | null): Record<string, unknown> {
  if (value === null) throw new PoisonError('undecodable', 'message has no value (tombstone)');
  const fingerprint = readFingerprint(value);
  let entry: DecoderEntry | undefined;
  if (fingerprint !== null) {
    entry = lookup.get(fingerprint);
    if (!entry) throw new PoisonError('unknown_fingerprint', `no known writer schema has fingerprint ${fingerprint}`);
  } else {
    // Confluent framing (00 | schema id | datum): the consumer resolved its id through the
    // registry before this message was submitted (consumers/schema-registry.ts).
    const id = readSchemaId(value);
    if (id === null) throw new PoisonError('undecodable', 'neither Avro single-object encoding (C3 01 header) nor Confluent framing (00 and a schema id)');
    const registered = lookup.getRegistered(id);
    if (registered === undefined) throw new PoisonError('unknown_schema_id', `schema id ${id}: Confluent framing, and this worker has no schema registry (set SCHEMA_REGISTRY_URL)`);
    if ('refused' in registered) throw new PoisonError('unknown_schema_id', registered.refused);
    entry = registered;
  }
  if (entry.eventType !== expected) {
    throw new PoisonError('invalid_value', `a ${entry.eventType.name} event on the topic of ${expected.name}`);
  }
  let record: Record<string, unknown>;
  try {
    record = entry.decode(value);
  } catch (err) {
    const writer = fingerprint !== null ? `schema ${fingerprint}` : `schema id ${readSchemaId(value)}`;
    throw new PoisonError('undecodable', `Avro datum does not match ${writer}: ${(err as Error).message}`, { cause: err });
  }
  try {
    checkEventRecord(expected, record);
  } catch (err) {
    if (err instanceof EventValidationError) throw new PoisonError('invalid_value', err.message, { cause: err });
    throw err;
  }
  return record;
}

/**
 * First stage: decode and validate each message into its row of the open batch's insert body,
 * route poison to the dead-letter queue. `submit` never blocks; it throws MessageRejected (from
 * the batch stage, before any side effect) when the message cannot be taken now.
 *
 * Two paths, one result. The fast path transcodes the Avro bytes straight into the body's format
 * (avro-to-tsv.ts). Anything it is not sure of (an older writer schema, a value it refuses)
 * takes the object path: avsc decode with schema resolution, checkEventRecord, the body's encoder.
 * That path writes the same row for a good message and names the reason for a poison one.
 */
export class DecodeStage {
  constructor(
    private readonly next: BatchStage,
    private readonly lookup: SchemaLookup,
    private readonly typeOfTopic: ReadonlyMap<string, EventType>,
    /** Also holds the per-topic poison limit (deadLetters.limit, see poison-limit.ts). */
    private readonly deadLetters: DeadLetterSink,
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
  ) {}

  /**
   * Messages and bytes counted since the last flushCounts(), per topic. Two prom-client counter
   * increments per message were 2.4% of the worker's main thread; the consumer flushes these once
   * per fetched batch (and on its poll tick), so a scrape lags by at most one batch.
   */
  private readonly pendingCounts = new Map<string, { messages: number; bytes: number; poison: number; children: { messages: { inc(n?: number): void }; bytes: { inc(n?: number): void } } }>();

  private counted(topic: string, bytes: number): void {
    let c = this.pendingCounts.get(topic);
    if (!c) {
      c = { messages: 0, bytes: 0, poison: 0, children: { messages: this.metrics.messagesConsumed.labels({ topic }), bytes: this.metrics.messageBytesConsumed.labels({ topic }) } };
      this.pendingCounts.set(topic, c);
    }
    c.messages++;
    c.bytes += bytes;
  }

  /** Adds the messages and bytes counted so far to the Prometheus counters, and the good ones to the poison limit. */
  flushCounts(): void {
    for (const [topic, c] of this.pendingCounts) {
      if (c.messages === 0) continue;
      c.children.messages.inc(c.messages);
      c.children.bytes.inc(c.bytes);
      // Poison messages were counted by admitPoison already.
      if (c.messages > c.poison) this.deadLetters.limit.good(topic, c.messages - c.poison);
      c.messages = 0;
      c.bytes = 0;
      c.poison = 0;
    }
  }

  submit(msg: KafkaRecord): void {
    const type = this.typeOfTopic.get(msg.topic);
    if (!type) throw new Error(`no event type is consumed from topic ${msg.topic}`);
    const bytes = msg.value?.length ?? 0;
    const body = this.next.reserve(msg.topic, msg.partition, type, msg.offset, bytes, msg.timestamp);
    this.counted(msg.topic, bytes);
    const transcode = transcoderFor(type, body.format);
    const value = msg.value;
    let timestamp: number | undefined;
    if (value !== null && transcode) {
      try {
        timestamp = transcode(value, msg.offset, body);
      } catch {
        // Not sure of this one: the object path below decides.
      }
    }
    try {
      if (timestamp === undefined) timestamp = this.objectPath(type, value, msg.offset, body);
      body.endRow(msg.offset, timestamp);
      this.next.append(msg.topic, msg.partition, msg.offset, bytes);
    } catch (err) {
      if (!(err instanceof PoisonError)) throw err;
      // Nothing of this message is in the batch yet (the transcoder and the object path write
      // only a whole row), so holding it now is a plain refusal: the partition pauses, this
      // message is offered again later, nothing past it commits.
      const counts = this.pendingCounts.get(msg.topic)!;
      if (!this.deadLetters.limit.admitPoison(msg.topic)) {
        // Counted again when it is offered again.
        counts.messages--;
        counts.bytes -= bytes;
        throw new MessageRejected(`${msg.topic} is stopped by the poison limit`);
      }
      counts.poison++;
      this.metrics.poisonMessages.inc({ topic: msg.topic, reason: err.reason });
      this.log.warn('poison message dead-lettered', { topic: msg.topic, partition: msg.partition, offset: msg.offset, reason: err.reason, detail: err.message });
      // Retried until durable (the batch commits only after it), or until the assignment is
      // revoked or stopping: then its batch is given up and Kafka re-delivers the message.
      const signal = this.next.ledgerOf(msg.topic, msg.partition)?.signal;
      const write = retryUntilDone(
        'dead-letter write',
        () => this.deadLetters.poison({ topic: msg.topic, partition: msg.partition, offset: msg.offset, reason: err.reason, detail: err.message, value: msg.value }, { signal }),
        this.log,
        { signal },
      );
      write.catch(() => undefined); // awaited by the commit stage; a stop may abandon it first
      this.next.append(msg.topic, msg.partition, msg.offset, bytes, write);
    }
  }

  /** Decodes, checks and encodes one message the slow way; throws PoisonError when it is poison. */
  private objectPath(type: EventType, value: Buffer | null, offset: number, body: InsertBody): number {
    const record = decodeMessage(this.lookup, type, value);
    body.writeRecord(type, record, offset);
    const ts = record[type.timestampField];
    return typeof ts === 'number' ? ts : Number.NaN;
  }
}
