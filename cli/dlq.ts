import { DeadLetterQueue, type DeadLetterJob } from '../consumers/dead-letter-queue.js';
import { ConfigError, loadConfig } from '../lib/config.js';
import { createRedis } from '../lib/redis.js';
import { redactUrl } from '../lib/secrets.js';

const USAGE = `usage: npm run dlq -- <command>
  list [--all] [--json]     dead letters (failed state); --all also shows those still retrying
  show <id>                 one letter: reason, topic/partition/offset, error, original bytes
  replay <id> | --all       move dead letters back to the queue; a running worker inserts them
  drop <id>                 delete one letter for good
Reads REDIS_URL and DLQ_QUEUE_PREFIX like the worker.`;

class UsageError extends Error {}

/**
 * Hides the credentials of REDIS_URL (and of any other URL) in everything this command prints:
 * `redis://user:secret@host` becomes `redis://***@host`, and the password itself is masked
 * wherever else it appears (an error quoting it, a URL-encoded copy).
 */
export function redact(text: string, url = process.env.REDIS_URL ?? ''): string {
  let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1***@');
  try {
    const { password } = new URL(url);
    for (const secret of [password, decodeURIComponent(password)]) {
      if (secret && secret.length >= 3) out = out.split(secret).join('***');
    }
  } catch {
    // Not a URL: nothing more to mask.
  }
  return out;
}

/** Routes every console line through redact(), so no code path can print the password. */
function redactConsole(): void {
  for (const method of ['log', 'error', 'warn', 'info', 'table'] as const) {
    const original = console[method].bind(console);
    if (method === 'table') {
      console.table = (data: unknown) => console.log(redactTable(data));
      continue;
    }
    console[method] = (...args: unknown[]) => original(...args.map((a) => redact(typeof a === 'string' ? a : a instanceof Error ? `${a.name}: ${a.message}` : JSON.stringify(a))));
  }
}

function redactTable(data: unknown): string {
  const rows = Array.isArray(data) ? (data as Record<string, unknown>[]) : [];
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) => keys.map((k) => String(r[k] ?? '')));
  const widths = keys.map((k, i) => Math.max(k.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join('  ');
  return [line(keys), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

function summary(job: DeadLetterJob) {
  const d = job.data as unknown as Record<string, unknown>;
  const where = job.name === 'batch' ? `${d.topic}[${d.partition}] ${d.firstOffset}-${d.lastOffset}` : `${d.topic}[${d.partition}] @${d.offset}`;
  const what = job.name === 'batch' ? `${(d.rows as unknown[]).length} rows → ${d.table}` : String(d.reason);
  return { id: String(job.id), kind: job.name, where, what, attempts: job.attemptsMade, failedReason: job.failedReason ?? '' };
}

async function run(args: string[], dlq: DeadLetterQueue): Promise<void> {
  const [command, ...rest] = args;
  const json = rest.includes('--json');
  switch (command) {
    case 'list': {
      const states = rest.includes('--all') ? (['failed', 'waiting', 'delayed', 'active'] as const) : (['failed'] as const);
      const jobs = await dlq.list([...states], 1_000);
      const rows = jobs.map(summary);
      if (json) console.log(JSON.stringify(rows, null, 2));
      else if (rows.length === 0) console.log('no dead letters');
      else console.table(rows);
      const depth = await dlq.depth();
      if (!json) console.log(`dead: ${depth.dead}, retrying: ${depth.retrying}`);
      return;
    }
    case 'show': {
      const id = rest[0];
      if (!id) throw new UsageError('show needs a job id');
      const job = await dlq.get(id);
      if (!job) throw new UsageError(`no dead letter with id ${id}`);
      const d = job.data as unknown as Record<string, unknown>;
      const out: Record<string, unknown> = { ...summary(job), state: await job.getState(), ...d };
      if (typeof d.valueBase64 === 'string') {
        const bytes = Buffer.from(d.valueBase64, 'base64');
        out.valueBytes = bytes.length;
        out.valueHex = bytes.subarray(0, 256).toString('hex') + (bytes.length > 256 ? '…' : '');
        delete out.valueBase64;
      }
      if (Array.isArray(d.rows)) out.rows = `${d.rows.length} rows (first: ${JSON.stringify(d.rows[0])})`;
      console.log(JSON.stringify(out, null, 2));
      return;
    }
    case 'replay': {
      const ids = rest[0] === '--all' ? (await dlq.list(['failed'], 100_000)).map((j) => String(j.id)) : rest.slice(0, 1);
      if (ids.length === 0) throw new UsageError(rest[0] === '--all' ? 'no dead letters to replay' : 'replay needs a job id or --all');
      let moved = 0;
      for (const id of ids) {
        if (await dlq.replay(id)) moved++;
        else console.error(`${id}: not a dead letter (unknown id, or still retrying)`);
      }
      console.log(`${moved} replayed: a running worker's retry worker inserts them; watch ingest_dead_letter_replayed_total`);
      if (moved < ids.length) process.exitCode = 1;
      return;
    }
    case 'drop': {
      const id = rest[0];
      if (!id) throw new UsageError('drop needs a job id');
      if (!(await dlq.drop(id))) throw new UsageError(`no dead letter with id ${id}`);
      console.log(`dropped ${id}`);
      return;
    }
    default:
      throw new UsageError(command ? `unknown command ${JSON.stringify(command)}` : 'missing command');
  }
}

async function main(): Promise<void> {
  redactConsole();
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  // One attempt, no reconnect loop: an operator's command should fail fast and say why.
  const redis = createRedis(config.redis, { maxRetriesPerRequest: 3, lazyConnect: true, retryStrategy: () => null });
  let cause: Error | undefined;
  redis.on('error', (err: Error) => (cause ??= err));
  try {
    await redis.connect();
  } catch (err) {
    console.error(`cannot reach Redis at ${redactUrl(config.redis.url)}: ${(cause ?? (err as Error)).message}`);
    redis.disconnect();
    process.exit(1);
  }
  const dlq = new DeadLetterQueue(redis, config.deadLetter, undefined);
  try {
    await run(process.argv.slice(2), dlq);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`${err.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      console.error(`dlq: ${(err as Error).name}: ${(err as Error).message}`);
      process.exitCode = 1;
    }
  } finally {
    await dlq.close();
    redis.disconnect();
  }
}

// Anything thrown outside main's handling is printed redacted too, never as a raw stack.
await main().catch((err: unknown) => {
  console.error(`dlq: ${(err as Error)?.message ?? String(err)}`);
  process.exit(1);
});
