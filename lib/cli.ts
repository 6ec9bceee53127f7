import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, SECRET_ENV } from './config.js';

/**
 * What every command (`npm run worker|migrate|query|dlq|schemas:export`) shares: `--help`, strict
 * argument parsing before anything touches the network or the disk, one line per error, and the
 * same exit codes, modelled on clickhouse-client and kcat:
 *   0  done (or --help)
 *   1  a runtime failure: a service unreachable, a query failed, a letter not found
 *   2  bad usage (an unknown option or subcommand, a missing or bad value) or bad configuration
 * Errors go to stderr as `<command>: <what is wrong>`, usage errors end with `; see --help`.
 * Nothing printed by this module holds a secret: URL credentials and the values of the secret
 * settings are masked (redact).
 */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The exit-code lines every usage text ends with. */
export const EXIT_CODES = `exit codes:
  0  done
  1  runtime failure (a service unreachable, …), one line on stderr
  2  bad arguments or configuration, one line on stderr (see --help)`;

/** A bad command line: printed as `<command>: <message>; see --help`, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A runtime failure whose message is already the one line to print (exit 1). */
export class CommandFailure extends Error {
  override readonly name = 'CommandFailure';
}

/** True when the arguments ask for help (`--help` or `-h` before a `--`): help wins over any other problem. */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * node:util parseArgs in strict mode, with its errors turned into one-line UsageErrors
 * (`unknown option --frobnicate`, `--hours needs a value`), and an option given twice refused
 * (parseArgs would keep the last one silently).
 */
export function parseCommandLine<O extends Options>(argv: readonly string[], options: O, allowPositionals: boolean) {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals, tokens: true });
  } catch (err) {
    throw new UsageError(parseArgsMessage(err as Error & { code?: string }));
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name) && !options[token.name]?.multiple) throw new UsageError(`--${token.name} given twice`);
    seen.add(token.name);
  }
  return { values: parsed.values, positionals: parsed.positionals };
}

function parseArgsMessage(err: Error & { code?: string }): string {
  const quoted = /'([^']+)'/.exec(err.message)?.[1] ?? '';
  const option = quoted.split(/[ ,]+/).find((p) => p.startsWith('--')) ?? quoted.split(/[ ,]+/)[0] ?? quoted;
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${option}`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(quoted)}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/argument missing/.test(err.message)) return `${option} needs a value`;
      if (/ambiguous/.test(err.message)) return `${option} needs a value (for a value starting with "-", write ${option}=-…)`;
      if (/does not take an argument/.test(err.message)) return `${option} takes no value`;
      return `bad value for ${option}`;
    default:
      return err.message.split('\n')[0]!;
  }
}

const extraSecrets = new Set<string>();

/** Masks `secret` (a password read from a file, say) in everything redact() sees from now on. */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 3) extraSecrets.add(secret);
}

/**
 * `text` without secrets: the credentials of any URL (`redis://user:pw@h` → `redis://***@h`), and
 * the values of the secret settings in `env` (and of registerSecret), raw or URL-encoded,
 * wherever they appear.
 */
export function redact(text: string, env: NodeJS.ProcessEnv = process.env): string {
  let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1***@');
  const secrets = new Set(extraSecrets);
  for (const name of SECRET_ENV) {
    const value = env[name];
    if (!value) continue;
    if (URL.canParse(value)) {
      const { username, password } = new URL(value);
      for (const part of [password, username]) for (const s of [part, safeDecode(part)]) if (s.length >= 3) secrets.add(s);
    } else if (value.length >= 3) {
      secrets.add(value);
      secrets.add(encodeURIComponent(value));
    }
  }
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(secret).join('***');
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * One line describing a runtime error: its message (AggregateError: its first cause; an empty
 * message: the code), on one line, redacted, at most 2,000 characters. Never a stack.
 */
export function describeError(err: unknown): string {
  let e = err as { message?: unknown; code?: unknown; errors?: unknown[]; cause?: unknown } | undefined;
  if (e && !e.message && Array.isArray(e.errors) && e.errors.length > 0) e = e.errors[0] as typeof e;
  let text = typeof e?.message === 'string' && e.message ? e.message : typeof e?.code === 'string' ? e.code : String(err);
  const cause = e?.cause as { message?: string; code?: string } | undefined;
  if (cause && typeof cause.message === 'string' && cause.message && !text.includes(cause.message)) text += ` (${cause.message})`;
  const line = redact(text)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
  return line.length > 2_000 ? `${line.slice(0, 1_999)}…` : line;
}

/**
 * The one line (or, for a configuration error, the list of every bad setting) for an error, and
 * its exit code.
 */
export function errorReport(command: string, err: unknown): { text: string; code: number } {
  if (err instanceof UsageError) return { text: `${command}: ${redact(err.message)}; see --help`, code: EXIT_USAGE };
  if (err instanceof ConfigError) return { text: `${command}: ${redact(err.message)}`, code: EXIT_USAGE };
  return { text: `${command}: ${describeError(err)}`, code: EXIT_FAILURE };
}

/**
 * Runs a command: `--help`/`-h` prints `usage` on stdout and exits 0 before `body` runs; `body`
 * parses and validates its arguments first, then does its work and returns the exit code. Any
 * error it throws becomes one line on stderr and exit 1 or 2 (errorReport). The process exits
 * when `body` settles, so a client left open by a failure cannot keep it alive.
 */
export async function runCommand(command: string, usage: string, body: (argv: readonly string[]) => Promise<number>, argv: readonly string[] = process.argv.slice(2)): Promise<never> {
  if (wantsHelp(argv)) {
    process.stdout.write(`${usage}\n`);
    process.exit(EXIT_OK);
  }
  let code: number;
  try {
    code = await body(argv);
  } catch (err) {
    const report = errorReport(command, err);
    process.stderr.write(`${report.text}\n`);
    code = report.code;
  }
  process.exit(code);
}
