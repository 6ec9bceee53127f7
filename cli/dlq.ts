import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { DeadLetterJob, DeadLetterQueue } from '../consumers/dead-letter-queue.js';
import { CommandFailure, EXIT_CODES, EXIT_FAILURE, EXIT_OK, parseCommandLine, redact, registerSecret, runCommand, UsageError } from '../lib/cli.js';
import { loadConfig } from '../lib/config.js';
import { formatTable } from './query-format.js';

/**
 * `npm run dlq -- <command>`: inspect, replay and drop dead letters. Arguments are parsed and
 * checked before Redis is contacted; exit codes as every command (lib/cli.ts).
 */
export const USAGE = `usage: npm run dlq -- <command>
  list [--all] [--json]     dead letters (failed state); --all also shows those still retrying
  show <id>                 one letter: reason, topic/partition/offset, error, original bytes
  replay <id> | --all       move dead letters back to the queue; a running worker inserts them
  drop <id>                 delete one letter for good
  -h, --help                this text
Reads REDIS_URL and DLQ_QUEUE_PREFIX like the worker (docs/configuration.md).
${EXIT_CODES}
  (2 also for an id that is no dead letter; 1 when replay --all could not move every letter)`;

export type DlqCommand =
  | { command: 'list'; all: boolean; json: boolean }
  | { command: 'show'; id: string }
  | { command: 'replay'; id?: string; all: boolean }
  | { command: 'drop'; id: string };

const COMMANDS: Record<DlqCommand['command'], readonly string[]> = { list: ['all', 'json'], show: [], replay: ['all'], drop: [] };
/** Letter ids are made of these characters (dead-letter-queue.ts: JOB_ID_UNSAFE; BullMQ's own ids are numbers). */
const LETTER_ID = /^[A-Za-z0-9._-]{1,512}$/;

/** Parses the command line (node:util parseArgs, strict); throws UsageError for anything unknown, missing or extra. */
export function parseDlqArgs(argv: readonly string[]): DlqCommand {
  const { values, positionals } = parseCommandLine(argv, { all: { type: 'boolean' }, json: { type: 'boolean' } }, true);
  const [command, ...args] = positionals;
  const known = Object.keys(COMMANDS).join(', ');
  if (!command) throw new UsageError(`missing command (${known})`);
  if (!Object.hasOwn(COMMANDS, command)) throw new UsageError(`unknown command ${JSON.stringify(command)} (${known})`);
  const name = command as DlqCommand['command'];
  for (const option of Object.keys(values)) if (!COMMANDS[name].includes(option)) throw new UsageError(`${name} takes no --${option}`);
  const all = values.all === true;
  if (name === 'list') {
    if (args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])}: list takes no id`);
    return { command: 'list', all, json: values.json === true };
  }
  if (name === 'replay' && all) {
    if (args.length > 0) throw new UsageError('replay takes an id or --all, not both');
    return { command: 'replay', all: true };
  }
  if (args.length === 0) throw new UsageError(name === 'replay' ? 'replay needs a job id or --all' : `${name} needs a job id`);
  if (args.length > 1) throw new UsageError(`${name} takes one job id, got ${args.length}`);
  const id = args[0]!;
  if (!LETTER_ID.test(id)) throw new UsageError(`${JSON.stringify(id)} is not a job id (letters, digits, ".", "_" and "-")`);
  return name === 'replay' ? { command: 'replay', id, all: false } : { command: name, id };
}

/** Routes every console line (ours and the libraries') through redact(), so no code path can print a password. */
function redactConsole(): void {
  for (const method of ['log', 'error', 'warn', 'info'] as const) {
    const original = console[method].bind(console);
    console[method] = (...args: unknown[]) => original(...args.map((a) => redact(typeof a === 'string' ? a : a instanceof Error ? `${a.name}: ${a.message}` : JSON.stringify(a))));
  }
}

function summary(job: DeadLetterJob) {
  const d = job.data as unknown as Record<string, unknown>;
  const where = job.name === 'batch' ? `${d.topic}[${d.partition}] ${d.firstOffset}-${d.lastOffset}` : `${d.topic}[${d.partition}] @${d.offset}`;
  const what = job.name === 'batch' ? `${(d.rows as unknown[]).length} rows → ${d.table}` : String(d.reason);
  return { id: String(job.id), kind: job.name, where, what, attempts: job.attemptsMade, failedReason: job.failedReason ?? '' };
}

async function run(cmd: DlqCommand, dlq: DeadLetterQueue): Promise<number> {
  switch (cmd.command) {
    case 'list': {
      const states = cmd.all ? (['failed', 'waiting', 'delayed', 'active'] as const) : (['failed'] as const);
      const rows = (await dlq.list([...states], 1_000)).map(summary);
      if (cmd.json) {
        console.log(JSON.stringify(rows, null, 2));
        return EXIT_OK;
      }
      console.log(rows.length === 0 ? 'no dead letters' : formatTable(rows));
      const depth = await dlq.depth();
      console.log(`dead: ${depth.dead}, retrying: ${depth.retrying}`);
      return EXIT_OK;
    }
    case 'show': {
      const job = await dlq.get(cmd.id);
      // The id is the user's input: exit 2, as for a malformed one, though only Redis can tell.
      if (!job) throw new UsageError(`no dead letter with id ${cmd.id} (npm run dlq -- list shows them)`);
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
      return EXIT_OK;
    }
    case 'replay': {
      const ids = cmd.all ? (await dlq.list(['failed'], 100_000)).map((j) => String(j.id)) : [cmd.id!];
      if (ids.length === 0) {
        console.log('no dead letters to replay');
        return EXIT_OK;
      }
      let moved = 0;
      for (const id of ids) {
        if (await dlq.replay(id)) moved++;
        else console.error(`dlq: ${id}: not a dead letter (unknown id, or still retrying)`);
      }
      console.log(`${moved} replayed: a running worker's retry worker inserts them; watch ingest_dead_letter_replayed_total`);
      return moved < ids.length ? EXIT_FAILURE : EXIT_OK;
    }
    case 'drop': {
      if (!(await dlq.drop(cmd.id))) throw new UsageError(`no dead letter with id ${cmd.id} (npm run dlq -- list shows them)`);
      console.log(`dropped ${cmd.id}`);
      return EXIT_OK;
    }
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  redactConsole();
  const cmd = parseDlqArgs(argv);
  const config = loadConfig();
  registerSecret(config.redis.password);
  // Loaded after the arguments and the configuration are checked.
  const { createRedis } = await import('../lib/redis.js');
  const { redactUrl } = await import('../lib/secrets.js');
  const { DeadLetterQueue } = await import('../consumers/dead-letter-queue.js');
  // One attempt, no reconnect loop: an operator's command should fail fast and say why.
  const redis = createRedis(config.redis, { maxRetriesPerRequest: 3, lazyConnect: true, retryStrategy: () => null });
  let cause: Error | undefined;
  redis.on('error', (err: Error) => (cause ??= err));
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new CommandFailure(`cannot reach Redis at ${redactUrl(config.redis.url)}: ${(cause ?? (err as Error)).message}`);
  }
  const dlq = new DeadLetterQueue(redis, config.deadLetter, undefined);
  // BullMQ re-emits connection errors on the queue; without a listener it prints them with a stack.
  dlq.queue.on('error', (err: Error) => (cause ??= err));
  try {
    return await run(cmd, dlq);
  } finally {
    await dlq.close().catch(() => undefined);
    redis.disconnect();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  await runCommand('dlq', USAGE, main);
}
