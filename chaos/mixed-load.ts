import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Producer } from 'kafkajs';
import { ROOT, children, sleep } from '../bench/common.js';
import { letterIdentity } from '../consumers/letter-healer.js';
import type { CostMetricInput, IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { toEventRecord } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { encodeSingleObject } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import { sampleEvents } from '../test/fixtures/events.js';
import { costV2 } from './cost-v2.js';

/**
 * What the fault suite produces into a scenario's topic, and what it expects of it afterwards.
 * A source of events has a tag (the first part of every event id `<tag>-<n>`, no '-' in it), so
 * the audit counts rows per source; it knows how many rows it must become (`valid`), and the
 * dead-letter job ids its poison messages must become (`letterIds`: the ids are deterministic in
 * topic, partition, offset and bytes, consumers/dead-letter-queue.ts letterIdentity).
 */
export interface Source {
  readonly tag: string;
  /** Messages written to the topic (acknowledged), poison included. */
  readonly messages: number;
  /** Events that must land as rows (valid now, or healable: a newer schema an upgrade decodes). */
  readonly valid: number;
  /** Poison messages no worker can ever insert: each must rest as one dead letter. */
  readonly poison: number;
  /** Job ids of the poison letters (one per poison message). */
  readonly letterIds: ReadonlySet<string>;
  /** Job ids a healable message gets if a worker dead-letters it (it must then land, its letter completed). */
  readonly healableIds: ReadonlySet<string>;
  /** Acknowledged poison messages: partition, offset and letter id. */
  readonly poisonAt: ReadonlyArray<{ partition: number; offset: number; jobId: string }>;
  /** Send failures the producer gave up on (the events may or may not be in the topic). */
  readonly failures: string[];
  finish(): Promise<void>;
  stop(): Promise<void>;
}

export type Kind = 'valid' | 'v2' | 'undecodable' | 'unknown_fingerprint';

/**
 * The poison share of every scenario: 2 messages in 40 (5%), one of bytes that are not the wire
 * format, one with a writer-schema fingerprint no worker knows. Far below the poison limit
 * (deadLetter.maxPoisonRatio, 0.5 of a window of 1,000 by default), so no topic is stopped.
 */
export const POISON_SHARE = 2 / 40;
export const defaultMix = (n: number): Kind => (n % 40 === 19 ? 'undecodable' : n % 40 === 39 ? 'unknown_fingerprint' : 'valid');
/** The rolling upgrade's stream: one event in 5 of cost schema v2, plus the usual poison. */
export const upgradeMix = (n: number): Kind => (n % 5 === 2 ? 'v2' : defaultMix(n));
/** Only poison, half of each kind (a poison source beside producers of valid events). */
export const poisonOnlyMix = (n: number): Kind => (n % 2 === 0 ? 'undecodable' : 'unknown_fingerprint');

/** A fingerprint that is no schema's: an `unknown_fingerprint` letter that never heals. */
const UNKNOWN_FINGERPRINT = Buffer.from('c0ffee0ddecaf001', 'hex');

function encode(kind: Kind, tag: string, n: number, sample: CostMetricInput, timestamp: number): Buffer {
  if (kind === 'undecodable') return Buffer.from(`chaos poison ${tag}-${n}: not the single-object wire format`);
  const event = { ...sample, instance_id: `${tag}-${n}`, timestamp };
  if (kind === 'v2') return encodeSingleObject(costV2.avroType, costV2.fingerprint, toEventRecord(costV2, { ...event, discount_percent: n % 100 }));
  return encodeSingleObject(costMetrics.avroType, kind === 'unknown_fingerprint' ? UNKNOWN_FINGERPRINT : costMetrics.fingerprint, toEventRecord(costMetrics, event));
}

/** `finish` and `stop` of a load that runs until its total or `stop()` (Load, SdkLoad). */
abstract class StoppableLoad {
  protected stopped = false;
  private done: Promise<void> = Promise.resolve();

  /** Called once by the subclass's constructor with its running loop. */
  protected begin(run: Promise<void>): void {
    this.done = run;
  }

  finish(): Promise<void> {
    return this.done;
  }

  stop(): Promise<void> {
    this.stopped = true;
    return this.done;
  }
}

/**
 * Produces `rate` messages/s in 100 ms chunks, `mix(n)` deciding what message n is, until
 * `total` or `stop()`; idempotent (acks all, one request in flight), so a send retried across a
 * broker outage is written once and the counts are exact. A failed send waits and is retried
 * with the same messages. Message n goes to partition n % partitions, so the offset of every
 * message is known from the send's base offsets, and with it each poison letter's job id.
 */
export class Load extends StoppableLoad implements Source {
  messages = 0;
  valid = 0;
  poison = 0;
  readonly letterIds = new Set<string>();
  readonly healableIds = new Set<string>();
  readonly poisonAt: Array<{ partition: number; offset: number; jobId: string }> = [];
  readonly failures: string[] = [];

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    readonly tag: string,
    rate: number,
    total: number,
    private readonly mix: (n: number) => Kind = defaultMix,
    private readonly partitions = 4,
  ) {
    super();
    this.begin(this.run(rate, total));
  }

  private async run(rate: number, total: number): Promise<void> {
    const chunk = Math.max(1, Math.round(rate / 10));
    while (!this.stopped && this.messages < total) {
      const t0 = Date.now();
      const from = this.messages;
      const kinds = Array.from({ length: Math.min(chunk, total - from) }, (_, i) => this.mix(from + i));
      const samples = sampleEvents('cost_metrics', kinds.length, from + 1) as CostMetricInput[];
      const messages = kinds.map((kind, i) => ({ partition: (from + i) % this.partitions, key: `${this.tag}-${(from + i) % 64}`, value: encode(kind, this.tag, from + i, samples[i]!, t0 + i) }));
      // One send per partition: a request spread over several leaders can fail on one broker
      // after the others wrote theirs, and kafkajs neither says which (so resending all of it
      // duplicates) nor resends a partition whose leader moved to a broker that had answered
      // (lost, though acknowledged). One partition is one broker and one request: its retry is
      // deduplicated by the idempotent producer's sequence numbers.
      const byPartition = new Map<number, typeof messages>();
      for (const m of messages) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m]);
      const next = new Map<number, number>();
      const sends = [...byPartition].map(async ([partition, list]) => {
        for (;;) {
          try {
            const [r] = await this.producer.send({ topic: this.topic, acks: -1, messages: list });
            next.set(partition, Number(r!.baseOffset));
            return;
          } catch {
            if (this.stopped) throw new Error('stopped');
            await sleep(500);
          }
        }
      });
      // Stopped while a partition's send was failing: what the others wrote still counts.
      const stoppedMidway = (await Promise.allSettled(sends)).some((r) => r.status === 'rejected');
      let counted = 0;
      messages.forEach((m, i) => {
        if (!next.has(m.partition)) return;
        counted++;
        const offset = next.get(m.partition)!;
        next.set(m.partition, offset + 1);
        const kind = kinds[i]!;
        if (kind === 'valid' || kind === 'v2') this.valid++;
        else this.poison++;
        if (kind === 'valid') return;
        const { jobId } = letterIdentity({ topic: this.topic, partition: m.partition, offset, value: m.value });
        if (kind === 'v2') this.healableIds.add(jobId);
        else {
          this.letterIds.add(jobId);
          this.poisonAt.push({ partition: m.partition, offset, jobId });
        }
      });
      this.messages += counted;
      if (stoppedMidway) return;
      await sleep(Math.max(0, 100 - (Date.now() - t0)));
    }
  }
}

const CUSTOMERS = Array.from({ length: 16 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);

/**
 * Valid cost events through the TypeScript SDK (producers/): `emitCostMetrics` calls of
 * `rate / 10` events every 100 ms, each awaited (it resolves once Kafka acknowledged every
 * event). A rejected call is a failure: its events may or may not be in the topic.
 */
export class SdkLoad extends StoppableLoad implements Source {
  messages = 0;
  valid = 0;
  readonly poison = 0;
  readonly letterIds = new Set<string>();
  readonly healableIds = new Set<string>();
  readonly poisonAt = [];
  readonly failures: string[] = [];

  constructor(
    private readonly sdk: IngestProducer,
    readonly tag: string,
    rate: number,
    total: number,
  ) {
    super();
    this.begin(this.run(rate, total));
  }

  private async run(rate: number, total: number): Promise<void> {
    const chunk = Math.max(1, Math.round(rate / 10));
    let n = 0;
    while (!this.stopped && n < total) {
      const t0 = Date.now();
      const events = Array.from({ length: Math.min(chunk, total - n) }, (_, i) => ({
        timestamp: t0 + i,
        customer_id: CUSTOMERS[(n + i) % CUSTOMERS.length]!,
        cloud_provider: 'aws',
        service_name: 'ec2',
        instance_id: `${this.tag}-${n + i}`,
        instance_type: 'm5.xlarge',
        region: 'us-east-1',
        cost_per_hour: 0.1 + ((n + i) % 100) / 1000,
        utilization_percent: (n + i) % 100,
        is_spot: (n + i) % 2,
        is_reserved: 0,
      }));
      n += events.length;
      try {
        await this.sdk.emitCostMetrics(events);
        this.valid += events.length;
        this.messages += events.length;
      } catch (err) {
        this.failures.push(`${events.length} events: ${String(err)}`.slice(0, 200));
      }
      await sleep(Math.max(0, 100 - (Date.now() - t0)));
    }
  }
}

/**
 * Valid cost events through the Python SDK (producers/python), in a child process:
 * chaos/python-load.py with Debian's /usr/bin/python3 (INGEST_PYTHON to change), as the
 * integration tests spawn it. `valid` follows its acknowledged count (a progress line every
 * second), then its final report.
 */
export class PythonLoad implements Source {
  messages = 0;
  valid = 0;
  readonly poison = 0;
  readonly letterIds = new Set<string>();
  readonly healableIds = new Set<string>();
  readonly poisonAt = [];
  readonly failures: string[] = [];
  private readonly proc: ChildProcess;
  private readonly done: Promise<void>;

  constructor(brokers: readonly string[], topicPrefix: string, readonly tag: string, rate: number, total: number) {
    const python = process.env.INGEST_PYTHON ?? '/usr/bin/python3';
    this.proc = spawn(python, [join(ROOT, 'chaos/python-load.py'), topicPrefix, tag, String(rate), String(total)], {
      env: { ...process.env, KAFKA_BROKERS: brokers.join(',') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(this.proc);
    let out = '';
    let err = '';
    this.proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /progress (\d+)\s*$/.exec(err.trimEnd().split('\n').at(-1) ?? '');
      if (m) this.valid = this.messages = Number(m[1]);
    });
    this.done = new Promise((resolve) => {
      this.proc.once('exit', (code) => {
        children.delete(this.proc);
        try {
          const r = JSON.parse(out.trim().split('\n').at(-1) ?? '') as { acknowledged: number; failed: number; failures: string[] };
          this.valid = this.messages = r.acknowledged;
          for (const f of r.failures) this.failures.push(f);
          if (r.failed > r.failures.length) this.failures.push(`and ${r.failed - r.failures.length} more`);
        } catch {
          this.failures.push(`python exited ${code}: ${err.split('\n').filter((l) => !l.startsWith('progress')).slice(-5).join(' | ')}`);
        }
        resolve();
      });
    });
  }

  finish(): Promise<void> {
    return this.done;
  }

  stop(): Promise<void> {
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
    return this.done;
  }
}
