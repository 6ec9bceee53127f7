import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release, totalmem, availableParallelism } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Admin, Kafka } from 'kafkajs';
import { createKafka, createTopicsWithLeaders } from '../lib/kafka.js';

/** Shared plumbing of the bench steps: stack addresses, topics, timeouts, statistics, machine facts. */

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Child processes started by the bench; killed on exit so a failed or interrupted run leaves none behind. */
export const children = new Set<ChildProcess>();
export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.pid) c.kill('SIGKILL');
}

/** Runs `fn`, failing with a named error after `ms`: a hang fails the bench instead of blocking it. */
export async function withTimeout<T>(name: string, ms: number, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: timed out after ${Math.round(ms / 1000)} s`)), ms);
  });
  try {
    return await Promise.race([fn(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `fn` every `intervalMs` until it returns a value other than undefined; throws after `timeoutMs`. */
export async function waitUntil<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export interface Distribution {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of `values` (any unit). */
export function distribution(values: number[]): Distribution {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return { count: s.length, mean: round(mean, 2), p50: round(at(0.5), 2), p90: round(at(0.9), 2), p99: round(at(0.99), 2), max: round(s.at(-1) ?? NaN, 2) };
}

/** kafkajs client on the bench brokers (the project's factory, so logging matches the worker's). */
export function benchKafka(clientId = 'bench'): Kafka {
  return createKafka({ brokers: BROKERS, clientId, connectionTimeoutMs: 10_000 });
}

async function withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = benchKafka('bench-admin').admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

export function createTopic(topic: string, partitions: number): Promise<void> {
  return withAdmin(async (admin) => {
    await createTopicsWithLeaders(admin, [{ topic, numPartitions: partitions, replicationFactor: 1 }]);
  });
}

export function deleteTopicsWithPrefix(prefix: string): Promise<string[]> {
  return withAdmin(async (admin) => {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics });
    return topics;
  });
}

/** Records in a topic: the sum of high minus low watermarks (no compaction, no transactions here). */
export function topicRecordCount(topic: string): Promise<number> {
  return withAdmin(async (admin) => (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high) - Number(p.low), 0));
}

/** One sample of a Prometheus text exposition. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parsePrometheus(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/**
 * Quantile of a Prometheus histogram as `histogram_quantile` computes it: linear interpolation
 * inside the bucket that holds the rank. Only as precise as the bucket bounds.
 */
export function histogramQuantile(buckets: { le: number; count: number }[], q: number): number {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const total = sorted.at(-1)?.count ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of sorted) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe;
      return prevLe + ((b.le - prevLe) * (rank - prevCount)) / Math.max(1, b.count - prevCount);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

function packageVersion(name: string): string {
  return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
}

export function machineInfo() {
  return {
    os: `${platform()} ${release()}`,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    nproc: availableParallelism(),
    totalMemBytes: totalmem(),
  };
}

export async function versions() {
  const kafkaJar = readdirSync(join(ROOT, '.cache/kafka/libs')).find((f) => /^kafka-clients-.*\.jar$/.test(f));
  // `java -version` prints to stderr.
  const javaRun = spawnSync('java', ['-version'], { encoding: 'utf8' });
  const java = `${javaRun.stderr ?? ''}${javaRun.stdout ?? ''}`.trim() || 'unknown';
  const chdb = (await import('chdb')) as unknown as { version?: () => { libchdb?: string } };
  let libchdb = 'unknown';
  try {
    libchdb = String(chdb.version?.().libchdb ?? 'unknown');
  } catch {
    /* older bindings have no version() */
  }
  return {
    node: process.version,
    kafka: kafkaJar?.replace(/^kafka-clients-|\.jar$/g, '') ?? 'unknown',
    java: java.split('\n')[0],
    chdb: packageVersion('chdb'),
    libchdb,
    kafkajs: packageVersion('kafkajs'),
    platformaticKafka: packageVersion('@platformatic/kafka'),
    avsc: packageVersion('avsc'),
    clickhouseClient: packageVersion('@clickhouse/client'),
  };
}

/** Host-wide CPU ticks from /proc/stat: [busy, total]. */
function hostTicks(): [number, number] {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.reduce((a, b) => a + b, 0);
    return [total - idle, total];
  } catch {
    return [0, 0];
  }
}

/**
 * How busy the whole machine was during a step: the bench shares the box with whatever else
 * runs on it, so every step records host CPU use and load average next to its figures.
 */
export class HostLoad {
  private readonly start = hostTicks();
  private readonly load1Start = loadavg()[0]!;

  finish() {
    const [busy, total] = hostTicks();
    const share = (busy - this.start[0]) / Math.max(1, total - this.start[1]);
    return { hostCpuBusyPercent: round(100 * share, 1), loadavg1Start: round(this.load1Start, 2), loadavg1End: round(loadavg()[0]!, 2) };
  }
}

/** How long a step waited for a quiet host, and how busy the host was in the last 5 s window. */
export interface QuietWait {
  waitedSeconds: number;
  busyPercent: number;
}

/** Waits (up to `maxMs`) for a 5 s window in which the host is less than `maxBusyPercent` busy. */
export async function waitForQuietHost(maxMs: number, maxBusyPercent = 30): Promise<QuietWait> {
  const started = Date.now();
  for (;;) {
    const probe = new HostLoad();
    await sleep(5_000);
    const { hostCpuBusyPercent } = probe.finish();
    if (hostCpuBusyPercent < maxBusyPercent || Date.now() - started > maxMs) return { waitedSeconds: round((Date.now() - started) / 1000, 0), busyPercent: hostCpuBusyPercent };
  }
}

/**
 * The result file of an alternated A/B run (bench/ab-drain.ts, bench/ab-producer.ts): the
 * per-round after/before ratio of `rate`, each side named by its commit (a path of this machine
 * means nothing elsewhere). Returns the file's path and the ratios.
 */
export function writeAbResults<R extends { round: number; side: 'before' | 'after' }>(kind: string, sides: { before: string; after: string }, rounds: number, rate: (r: R) => number, results: R[], extra: Record<string, unknown>): { out: string; ratios: number[] } {
  const ratios = abRatios(results, rounds, rate);
  const out = join(ROOT, 'bench/results', `ab-${kind}-${new Date().toISOString()}.json`);
  const commitOf = (dir: string) => git(dir, 'rev-parse', 'HEAD');
  writeFileSync(out, JSON.stringify({ ...extra, rounds, sides: { before: commitOf(sides.before), after: commitOf(sides.after) }, results, ratiosAfterOverBefore: ratios }, null, 2));
  return { out, ratios };
}

/** After / before of `value` in each round of an alternated run, to three decimals. */
export function abRatios<R extends { round: number; side: 'before' | 'after' }>(results: readonly R[], rounds: number, value: (r: R) => number): number[] {
  return [...Array(rounds).keys()].map((round) => {
    const b = results.find((x) => x.round === round && x.side === 'before')!;
    const a = results.find((x) => x.round === round && x.side === 'after')!;
    return Math.round((value(a) / value(b)) * 1000) / 1000;
  });
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

/**
 * A path as results files record it: relative to the repository when inside it, else where
 * it is (a system interpreter); a directory in another git checkout as `<commit>:<path in it>`.
 * Results are committed, and must not name this machine's directories.
 */
export function pathForResults(path: string): string {
  const abs = resolvePath(path);
  if (abs === ROOT) return '.';
  if (abs.startsWith(`${ROOT}/`)) return abs.slice(ROOT.length + 1);
  try {
    const [top, commit] = git(statSync(abs).isDirectory() ? abs : dirname(abs), 'rev-parse', '--show-toplevel', 'HEAD').split('\n') as [string, string];
    return `${commit}:${abs === top ? '.' : abs.slice(top.length + 1)}`;
  } catch {
    return abs;
  }
}

