import type { ParseArgsConfig } from 'node:util';
import { parseCommandLine, UsageError, wantsHelp } from '../lib/cli.js';

type Options = NonNullable<ParseArgsConfig['options']>;

const BENCH_EXIT_CODES = `exit codes:
  0  done
  1  a step failed or timed out, or a count was not exact
  2  bad arguments, one line on stderr (see --help)`;

/**
 * The command line of a bench tool, checked before it produces, starts or connects to anything,
 * as the project's other commands do (lib/cli.ts): `--help` prints `usage` and exits 0; an
 * unknown option, a stray argument or a value that is not a positive integer (for the options
 * named in `positiveIntegers`) prints one line, `<name>: <what>; see --help`, and exits 2.
 */
export function benchArgs<O extends Options>(name: string, usage: string, options: O, positiveIntegers: readonly (keyof O & string)[] = []) {
  const argv = process.argv.slice(2);
  if (wantsHelp(argv)) {
    process.stdout.write(`${usage.trimEnd()}\n${BENCH_EXIT_CODES}\n`);
    process.exit(0);
  }
  try {
    const { values } = parseCommandLine(argv, options, false);
    for (const key of positiveIntegers) {
      const v = (values as Record<string, unknown>)[key];
      if (v !== undefined && !/^[1-9][0-9]*$/.test(String(v))) throw new UsageError(`--${key} must be a positive integer, got ${JSON.stringify(v)}`);
    }
    return values;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${name}: ${err.message}; see --help\n`);
    process.exit(2);
  }
}
