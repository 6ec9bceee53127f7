import { readdirSync, readFileSync } from 'node:fs';
import { ROOT, round } from './common.js';

/**
 * Where the worker's time goes, two ways:
 * - readThreadCpu: CPU seconds per thread of the worker process from /proc/<pid>/task/*\/stat,
 *   grouped by thread name. The JS main thread is "node"; chDB's engine threads, libuv's
 *   thread pool (gzip inflate of fetched batches) and V8's GC helpers have their own names.
 * - summariseCpuProfile: a `node --cpu-prof` profile of the main thread, self time grouped by
 *   module (kafkajs protocol decode, avsc, JSON serialisation, chdb binding, …), top functions.
 */
export interface ThreadCpu {
  totalSeconds: number;
  mainThreadSeconds: number;
  byThreadName: Record<string, number>;
  /** Internal: raw ticks per thread id, to subtract a later snapshot from. */
  ticks?: Record<string, number>;
}

const CLK_TCK = 100;

export function readThreadCpu(pid: number, since?: ThreadCpu): ThreadCpu {
  const ticks: Record<string, number> = {};
  const names: Record<string, string> = {};
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return { totalSeconds: 0, mainThreadSeconds: 0, byThreadName: {} };
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks[tid] = Number(fields[11]) + Number(fields[12]);
      names[tid] = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim().replace(/[#:]?\d+$/, '');
    } catch {
      /* the thread ended meanwhile */
    }
  }
  const byThreadName: Record<string, number> = {};
  let total = 0;
  let main = 0;
  for (const [tid, t] of Object.entries(ticks)) {
    const s = (t - (since?.ticks?.[tid] ?? 0)) / CLK_TCK;
    if (s <= 0) continue;
    total += s;
    if (tid === String(pid)) main += s;
    // Node's helper threads (V8 platform workers: GC, compiler; libuv pool: zlib inflate of fetched
    // batches) keep the process name "node"; chDB's threads have their own names.
    const name = tid === String(pid) ? 'JS main thread' : names[tid] === 'node' ? 'node helper threads (V8 GC/JIT, libuv pool: gzip)' : `chDB: ${names[tid]}`;
    byThreadName[name] = round((byThreadName[name] ?? 0) + s, 2);
  }
  const sorted = Object.fromEntries(Object.entries(byThreadName).sort((a, b) => b[1] - a[1]));
  return { totalSeconds: round(total, 2), mainThreadSeconds: round(main, 2), byThreadName: sorted, ticks };
}

/** Drops the raw ticks before the figures go into the results file. */
export function publicThreadCpu(t: ThreadCpu): Omit<ThreadCpu, 'ticks'> {
  const { ticks: _ticks, ...rest } = t;
  return rest;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

export interface ProfileSummary {
  file: string;
  sampledSeconds: number;
  /** Self time by module, seconds and share of the sampled time (idle included). */
  byModule: { module: string; seconds: number; percent: number }[];
  topFunctions: { function: string; module: string; seconds: number; percent: number }[];
}

export function moduleOf(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === '(garbage collector)') return 'V8 garbage collector';
    if (functionName === '(idle)') return '(idle: waiting on I/O, chDB or timers)';
    if (functionName === '(program)') return 'V8/native (program)';
    if (functionName === 'stringify' || functionName === 'parse') return 'JSON builtins';
    return `native builtins`;
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  if (nm) {
    const [, pkg, rest] = nm as unknown as [string, string, string];
    if (pkg === 'kafkajs') {
      if (rest.includes('/protocol/')) return 'kafkajs protocol (record batch encode/decode)';
      if (rest.includes('/network/')) return 'kafkajs network';
      if (rest.includes('/producer/')) return 'kafkajs producer (partitioning, grouping)';
      if (rest.includes('/consumer/')) return 'kafkajs consumer runner';
      return 'kafkajs utils (Long, crc32c, buffers)';
    }
    if (pkg.startsWith('@clickhouse/')) return '@clickhouse/client';
    if (pkg === 'chdb') return 'chdb binding (JS side)';
    return pkg;
  }
  // Code generated per event type (new Function with a sourceURL): the module that generates it.
  if (url.startsWith('generated:')) return `${url.slice('generated:'.length).replace(/\.ts\/.*$/, '.ts')} (generated)`;
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/');
    const mod = parts[0] === 'internal' ? `internal/${parts[1]}` : parts[0]!;
    return mod === 'zlib' || mod === 'internal/zlib' ? 'node:zlib (gzip)' : `node:${mod.replace(/\.js$/, '')}`;
  }
  const path = url.replace(/^file:\/\//, '');
  if (path.startsWith(ROOT)) return path.slice(ROOT.length + 1);
  return path;
}

export function summariseCpuProfile(file: string, top = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = Math.max(0, profile.timeDeltas[i] ?? 0);
    selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + dt);
    total += dt;
  }
  const modules = new Map<string, number>();
  const functions = new Map<string, { module: string; us: number }>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const module = moduleOf(frame);
    modules.set(module, (modules.get(module) ?? 0) + us);
    const key = `${frame.functionName || '(anonymous)'} ${frame.url ? `${moduleOf(frame)}:${frame.lineNumber + 1}` : ''}`.trim();
    const f = functions.get(key) ?? { module, us: 0 };
    f.us += us;
    functions.set(key, f);
  }
  const pct = (us: number) => round((100 * us) / Math.max(1, total), 1);
  return {
    file,
    sampledSeconds: round(total / 1e6, 2),
    byModule: [...modules].sort((a, b) => b[1] - a[1]).map(([module, us]) => ({ module, seconds: round(us / 1e6, 2), percent: pct(us) })),
    topFunctions: [...functions]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([fn, f]) => ({ function: fn, module: f.module, seconds: round(f.us / 1e6, 2), percent: pct(f.us) })),
  };
}
