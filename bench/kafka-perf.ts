import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BROKERS, ROOT, children } from './common.js';

/**
 * Transport limits, measured on the same broker with Kafka's own tools and with kafkajs alone:
 * - ProducerPerformance: `records` records of `recordSize` bytes (≈ our Avro event size) with
 *   the SDK's settings (acks=all, idempotence, gzip, linger 5 ms). Its payload is random
 *   letters, which gzip compresses less than our Avro; records/s is the comparable figure.
 * - ConsumerPerformance: reads the prefilled drain topic (same records the worker drained).
 *   fetchRecordsPerSec excludes its group-join time.
 * (kafkajs consume-only, the ceiling of a kafkajs worker, is `kafkajsConsume` in kafka-clients.ts.)
 */
export interface KafkaProducerPerf {
  records: number;
  recordSize: number;
  recordsPerSec: number;
  mbPerSec: number;
  avgLatencyMs: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
  maxLatencyMs: number;
  props: string[];
}

export interface KafkaConsumerPerf {
  records: number;
  mb: number;
  recordsPerSec: number;
  fetchRecordsPerSec: number;
  mbPerSec: number;
  rebalanceMs: number;
}


function runKafkaTool(cls: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn('bash', [join(ROOT, 'scripts/kafka.sh'), 'run', cls, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.add(proc);
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      // detached: the JVM is in the process group of bash; kill the group we started.
      if (proc.pid) process.kill(-proc.pid, 'SIGKILL');
      reject(new Error(`${cls} timed out after ${timeoutMs} ms:\n${out.slice(-2000)}${err.slice(-2000)}`));
    }, timeoutMs);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      children.delete(proc);
      if (code === 0) resolve(out);
      else reject(new Error(`${cls} exited with ${code}:\n${out.slice(-2000)}${err.slice(-2000)}`));
    });
  });
}

export async function kafkaProducerPerf(opts: { topic: string; records: number; recordSize: number; timeoutMs: number }): Promise<KafkaProducerPerf> {
  const props = [`bootstrap.servers=${BROKERS.join(',')}`, 'acks=all', 'enable.idempotence=true', 'compression.type=gzip', 'linger.ms=5', 'batch.size=65536'];
  const out = await runKafkaTool(
    'org.apache.kafka.tools.ProducerPerformance',
    ['--topic', opts.topic, '--num-records', String(opts.records), '--record-size', String(opts.recordSize), '--throughput', '-1', '--producer-props', ...props],
    opts.timeoutMs,
  );
  const line = out.trim().split('\n').at(-1) ?? '';
  const m = /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th/.exec(line);
  if (!m) throw new Error(`cannot parse ProducerPerformance output: ${line}`);
  return {
    records: Number(m[1]),
    recordSize: opts.recordSize,
    recordsPerSec: Math.round(Number(m[2])),
    mbPerSec: Number(m[3]),
    avgLatencyMs: Number(m[4]),
    maxLatencyMs: Number(m[5]),
    p50LatencyMs: Number(m[6]),
    p99LatencyMs: Number(m[8]),
    props,
  };
}

export async function kafkaConsumerPerf(opts: { topic: string; records: number; group: string; timeoutMs: number }): Promise<KafkaConsumerPerf> {
  const out = await runKafkaTool(
    'org.apache.kafka.tools.ConsumerPerformance',
    ['--bootstrap-server', BROKERS.join(','), '--topic', opts.topic, '--num-records', String(opts.records), '--group', opts.group, '--timeout', '30000'],
    opts.timeoutMs,
  );
  const lines = out.trim().split('\n');
  const header = lines.findIndex((l) => l.startsWith('start.time'));
  const cols = lines[header]!.split(',').map((s) => s.trim());
  const vals = lines[header + 1]!.split(',').map((s) => s.trim());
  const get = (name: string) => Number(vals[cols.indexOf(name)]);
  const records = get('data.consumed.in.nMsg');
  if (records < opts.records) throw new Error(`ConsumerPerformance read ${records} of ${opts.records} records`);
  return {
    records,
    mb: get('data.consumed.in.MB'),
    recordsPerSec: Math.round(get('nMsg.sec')),
    fetchRecordsPerSec: Math.round(get('fetch.nMsg.sec')),
    mbPerSec: get('MB.sec'),
    rebalanceMs: get('rebalance.time.ms'),
  };
}
