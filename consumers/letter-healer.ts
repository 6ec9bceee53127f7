import { createHash } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Admin } from 'kafkajs';
import { classifyClickHouseError, PoisonError, RetriableError } from '../lib/errors.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import type { PoisonJobData, PoisonLetter } from './dead-letter-queue.js';
import { fromLetterRows } from './letter-rows.js';
import type { InsertBatch } from './types.js';

/**
 * Healing poison letters: a letter the retry worker can now decode (an upgraded worker) or
 * that its table now accepts (a fixed table) lands in its table, once, and only once its
 * message is settled. Letters are healed in batches (LetterHealBatcher): one committed-offset
 * read per topic, one presence query per table and one insert per partition for many letters,
 * instead of three round trips per letter, which capped healing at tens of letters a second
 * while a rolling upgrade dead-letters thousands.
 */

/** The message a poison letter stands for, as its row would carry it in its table. */
export interface LetterMessage {
  topic: string;
  partition: number;
  offset: number;
  /** The decoded record (or the refused row): the presence check compares its event time. */
  record: Record<string, unknown>;
}

/**
 * What a replayed poison message is decoded and inserted with, and what tells whether it is
 * still needed (supplied by the worker; see letterChecks for the real ones).
 */
export interface PoisonReplayer {
  /** Decodes and validates the original bytes with the worker's current schemas; throws PoisonError when still bad. */
  decode(topic: string, value: Buffer): { table: string; record: Record<string, unknown> };
  insert(table: string, rows: InsertBatch, token: string): Promise<void>;
  /**
   * The consumer group's committed offsets of `topic` (partition → the next offset it reads);
   * a partition the group never committed is absent. May throw (broker unreachable): the
   * letters are tried later.
   */
  committedOffsets(topic: string): Promise<ReadonlyMap<number, number>>;
  /** For each message, whether `table` already holds its row (see letterChecks for what matches). */
  landed(table: string, messages: readonly LetterMessage[]): Promise<boolean[]>;
}

/**
 * The letter's message is not settled yet: the consumer group has not committed past its
 * offset, so the batch that dead-lettered it may have been abandoned (a rebalance, a crash) and
 * Kafka delivers the message again, to a worker that may insert it. Not a failure: the letter
 * is tried again later, whatever deadLetter.retryPeriodMs says.
 */
export class LetterNotSettled extends RetriableError {
  constructor(message: string) {
    super(message);
    Object.defineProperty(this, 'name', { value: 'LetterNotSettled' });
  }
}

/** Characters a BullMQ job id of ours may not hold (':' separates BullMQ's own keys). */
export const JOB_ID_UNSAFE = /[^A-Za-z0-9._-]/g;

/**
 * Identity of a poison letter: its coordinates and a hash of its data. The hash keeps a topic
 * deleted and created again (offsets from 0 again) from colliding with old letters, in BullMQ
 * (same job id: the new letter would be taken for the old one) and in ClickHouse (same
 * deduplication token: the new row would be dropped as a repeat). Same message, same id and
 * token, so a letter enqueued twice is one job and a letter inserted twice lands once.
 */
export function letterIdentity(letter: Pick<PoisonLetter, 'topic' | 'partition' | 'offset' | 'value' | 'row'>): { jobId: string; token: string } {
  const hash = createHash('sha256');
  if (letter.value) hash.update(letter.value);
  else hash.update(JSON.stringify(letter.row ?? null));
  const digest = hash.digest('hex').slice(0, 16);
  return {
    jobId: `poison-${letter.topic}-${letter.partition}-${letter.offset}-${digest}`.replace(JOB_ID_UNSAFE, '_'),
    token: `poison/${letter.topic}/${letter.partition}/${letter.offset}/${digest}`,
  };
}

/**
 * The real settle checks of PoisonReplayer: the group's committed offsets from Kafka
 * (admin.fetchOffsets, the offsets the consumer members commit) and a bound-parameter query of
 * the table.
 *
 * What counts as "the table holds the message's row": a row with the message's coordinates
 * (_kafka_topic, _kafka_partition, _kafka_offset) and the same event time (the event type's
 * timestampField, to the millisecond). Coordinates alone are not enough: a topic deleted and
 * created again restarts at offset 0, so an old row would pass for a new message at the same
 * offset and the new letter would be dropped. A row of the old log with the same coordinates
 * and the same event time is taken for the same event (a producer re-sending its events into
 * the new topic): the one collision this accepts. The committed offset of a recreated topic
 * starts again too; a letter from the old log waits (LetterNotSettled) until the group has
 * committed past its offset in the new one.
 */
export function letterChecks(
  admin: Pick<Admin, 'fetchOffsets'>,
  groupId: string,
  clickhouse: Pick<ClickHouseClient, 'query'>,
  eventTypes: readonly Pick<EventType, 'table' | 'timestampField'>[],
): Pick<PoisonReplayer, 'committedOffsets' | 'landed'> {
  const timeField = new Map(eventTypes.map((t) => [t.table, t.timestampField] as const));
  return {
    committedOffsets: async (topic) => {
      const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
      // kafkajs says -1 for a partition the group never committed.
      return new Map((t?.partitions ?? []).map((p) => [p.partition, Number(p.offset)] as const).filter(([, offset]) => offset >= 0));
    },
    landed: async (table, messages) => {
      if (messages.length === 0) return [];
      const field = timeField.get(table);
      // Rows found, by coordinates alone and by coordinates with their event time.
      const atCoordinates = new Set<string>();
      const atTime = new Set<string>();
      // One query per topic: the coordinates go in as two bound arrays, zipped into the IN set.
      for (const topic of new Set(messages.map((m) => m.topic))) {
        const of = messages.filter((m) => m.topic === topic);
        const rs = await clickhouse.query({
          query:
            `SELECT _kafka_partition AS p, _kafka_offset AS o, ${field === undefined ? 'NULL' : 'toUnixTimestamp64Milli({field:Identifier})'} AS ms FROM {table:Identifier} ` +
            'WHERE _kafka_topic = {topic:String} AND (_kafka_partition, _kafka_offset) IN (SELECT arrayJoin(arrayZip({partitions:Array(UInt32)}, {offsets:Array(UInt64)})))',
          query_params: { table, topic, partitions: of.map((m) => m.partition), offsets: of.map((m) => m.offset), ...(field === undefined ? {} : { field }) },
          format: 'JSONEachRow',
        });
        for (const row of await rs.json<{ p: number | string; o: number | string; ms: number | string | null }>()) {
          atCoordinates.add(`${topic}\0${row.p}\0${row.o}`);
          if (row.ms !== null) atTime.add(`${topic}\0${row.p}\0${row.o}\0${Number(row.ms)}`);
        }
      }
      return messages.map((m) => {
        const time = field === undefined ? undefined : m.record[field];
        // Without a usable event time in the record, coordinates alone decide.
        if (typeof time !== 'number' || !Number.isFinite(time)) return atCoordinates.has(`${m.topic}\0${m.partition}\0${m.offset}`);
        return atTime.has(`${m.topic}\0${m.partition}\0${m.offset}\0${Math.round(time)}`);
      });
    },
  };
}

/** What healing one letter came to: its table and whether it was inserted (false: it had landed from Kafka already). */
export interface HealResult {
  table: string;
  inserted: boolean;
}

/**
 * Heals poison letters with `replayer`: decodes each (or takes its refused row) and inserts it,
 * but only once it is settled. A letter is written when its message is decoded, before its
 * batch commits; if that batch is abandoned (a rebalance, a crash), Kafka delivers the message
 * again and whoever decodes it then (an upgraded worker, a fixed table) inserts it under the
 * stream's token, not the letter's, so ClickHouse could not drop the second copy. Hence:
 *  - the group must have committed past the letter's offset: the batch holding the message is
 *    done and Kafka will not deliver it again (short of an operator moving the group back).
 *    Before that the letter fails with LetterNotSettled and is tried again later;
 *  - and the table must not hold the message's row already (a later delivery of it landed and
 *    was committed past): then nothing is inserted, `inserted: false`, and the letter is done.
 * Between the check and the insert nothing else inserts the row: the stream is past it, and a
 * letter is one BullMQ job, run by one worker at a time.
 *
 * The letters still missing are inserted one insert per table and partition. The deduplication
 * token of a lone letter is the letter's own; that of several is a hash of theirs, so the same
 * letters retried together are dropped by ClickHouse as a repeat, and letters retried in another
 * grouping are found by the presence check first. An insert ClickHouse refuses as poison is
 * tried again letter by letter, so one row a table still refuses does not hold back the others.
 *
 * Returns, per letter and in order, its result or the error it failed with (PoisonError when
 * it still cannot be decoded, LetterNotSettled, or the error of a read or insert).
 */
export async function healPoisonLetters(letters: readonly PoisonJobData[], replayer: PoisonReplayer): Promise<Array<HealResult | Error>> {
  const out: Array<HealResult | Error> = new Array(letters.length);
  interface Pending {
    index: number;
    table: string;
    rows: InsertBatch;
    token: string;
    message: LetterMessage;
  }
  const pending: Pending[] = [];
  for (const [index, data] of letters.entries()) {
    try {
      const value = data.valueBase64 === null ? null : Buffer.from(data.valueBase64, 'base64');
      const { token } = letterIdentity({ ...data, value });
      let table: string;
      let rows: InsertBatch;
      if (data.row && data.table) {
        table = data.table;
        rows = fromLetterRows(data.topic, data.partition, [data.row]);
      } else if (value !== null) {
        const decoded = replayer.decode(data.topic, value);
        table = decoded.table;
        rows = { topic: data.topic, partition: data.partition, rows: [{ offset: data.offset, record: decoded.record, bytes: 0 }] };
      } else {
        throw new PoisonError('undecodable', 'message has no value (tombstone)');
      }
      pending.push({ index, table, rows, token, message: { topic: data.topic, partition: data.partition, offset: data.offset, record: rows.rows[0]!.record } });
    } catch (err) {
      out[index] = asError(err);
    }
  }

  // Settled: the group committed past the letter (one read per topic).
  const settled: Pending[] = [];
  for (const [topic, ofTopic] of groupBy(pending, (p) => p.message.topic)) {
    let committed: ReadonlyMap<number, number>;
    try {
      committed = await replayer.committedOffsets(topic);
    } catch (err) {
      for (const p of ofTopic) out[p.index] = asError(err);
      continue;
    }
    for (const p of ofTopic) {
      const c = committed.get(p.message.partition);
      if (c === undefined || c <= p.message.offset) {
        out[p.index] = new LetterNotSettled(
          `${topic}[${p.message.partition}] @${p.message.offset}: the consumer group has ${c === undefined ? 'no committed offset' : `committed up to ${c}`}; the batch that dead-lettered it may be read again from Kafka, so the letter waits`,
        );
      } else settled.push(p);
    }
  }

  // Missing from the table (one query per table), then inserted per table and partition.
  for (const [table, ofTable] of groupBy(settled, (p) => p.table)) {
    let landed: boolean[];
    try {
      landed = await replayer.landed(table, ofTable.map((p) => p.message));
    } catch (err) {
      for (const p of ofTable) out[p.index] = asError(err);
      continue;
    }
    const missing = ofTable.filter((p, i) => {
      if (landed[i]) out[p.index] = { table, inserted: false };
      return !landed[i];
    });
    for (const [, group] of groupBy(missing, (p) => `${p.message.topic}\0${p.message.partition}`)) {
      await insertGroup(table, group, replayer, out);
    }
  }
  return out;
}

async function insertGroup(table: string, group: ReadonlyArray<{ index: number; rows: InsertBatch; token: string }>, replayer: PoisonReplayer, out: Array<HealResult | Error>): Promise<void> {
  const sorted = [...group].sort((a, b) => a.rows.rows[0]!.offset - b.rows.rows[0]!.offset);
  const rows: InsertBatch = { topic: sorted[0]!.rows.topic, partition: sorted[0]!.rows.partition, rows: sorted.flatMap((p) => p.rows.rows) };
  const token = sorted.length === 1 ? sorted[0]!.token : `poison-batch/${createHash('sha256').update(sorted.map((p) => p.token).join('\n')).digest('hex').slice(0, 32)}`;
  try {
    await replayer.insert(table, rows, token);
    for (const p of sorted) out[p.index] = { table, inserted: true };
  } catch (err) {
    if (sorted.length > 1 && classifyClickHouseError(err) === 'poison') {
      // One row the table refuses must not hold back the others: each alone, under its own token.
      for (const p of sorted) await insertGroup(table, [p], replayer, out);
      return;
    }
    for (const p of sorted) out[p.index] = asError(err);
  }
}

/** One letter: healPoisonLetters of one, its error thrown. */
export async function healPoisonLetter(data: PoisonJobData, replayer: PoisonReplayer): Promise<HealResult> {
  const [result] = await healPoisonLetters([data], replayer);
  if (result instanceof Error) throw result;
  return result!;
}

/**
 * Gathers the letters the retry worker's concurrent jobs heal into batches. One batch is healed
 * at a time: letters that arrive meanwhile wait for it and go together in the next, which is
 * sent as soon as the current one is done (or `lingerMs` after its first letter when none is in
 * flight), up to `maxLetters`. Letters reach the healer one by one as BullMQ hands out jobs, so
 * sending every few milliseconds made many small batches whose inserts competed for the engine
 * (a rolling upgrade's letters took seconds per batch); waiting for the batch in flight makes
 * the batch as large as the letters that came in while it ran. Each job's promise settles with
 * its own letter's result, so BullMQ keeps retrying, resting and completing letters one by one;
 * only the round trips are shared.
 */
export class LetterHealBatcher {
  private waiting: Array<{ data: PoisonJobData; resolve: (r: HealResult) => void; reject: (e: Error) => void }> = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;

  constructor(
    private readonly replayer: PoisonReplayer,
    private readonly options: { maxLetters: number; lingerMs: number } = { maxLetters: 1_024, lingerMs: 20 },
  ) {}

  heal(data: PoisonJobData): Promise<HealResult> {
    return new Promise<HealResult>((resolve, reject) => {
      this.waiting.push({ data, resolve, reject });
      if (this.inFlight) return;
      if (this.waiting.length >= this.options.maxLetters) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.lingerMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight) return;
    const batch = this.waiting.splice(0, this.options.maxLetters);
    if (batch.length === 0) return;
    this.inFlight = true;
    healPoisonLetters(
      batch.map((w) => w.data),
      this.replayer,
    )
      .then(
        (results) => results.forEach((r, i) => (r instanceof Error ? batch[i]!.reject(r) : batch[i]!.resolve(r))),
        (err: unknown) => batch.forEach((w) => w.reject(asError(err))),
      )
      .finally(() => {
        this.inFlight = false;
        if (this.waiting.length > 0) this.flush();
      });
  }
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const g = groups.get(k);
    if (g) g.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));
