import { describe, expect, it } from 'vitest';
import { parseDlqArgs } from '../../cli/dlq.js';
import { describeError, errorReport, parseCommandLine, redact, registerSecret, UsageError, wantsHelp } from '../../lib/cli.js';
import { ConfigError } from '../../lib/config.js';

describe('lib/cli.ts', () => {
  it('--help and -h win, unless after --', () => {
    expect(wantsHelp(['list', '--bogus', '-h'])).toBe(true);
    expect(wantsHelp(['--help'])).toBe(true);
    expect(wantsHelp(['--', '--help'])).toBe(false);
    expect(wantsHelp(['list'])).toBe(false);
  });

  it('parses strictly, with one-line messages', () => {
    const options = { all: { type: 'boolean' as const }, hours: { type: 'string' as const } };
    expect(parseCommandLine(['x', '--all', '--hours=-5'], options, true)).toEqual({ values: { all: true, hours: '-5' }, positionals: ['x'] });
    const message = (argv: string[], positionals = true) => {
      try {
        parseCommandLine(argv, options, positionals);
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(message(['--frobnicate'])).toBe('unknown option --frobnicate');
    expect(message(['-z'])).toBe('unknown option -z');
    expect(message(['--hours'])).toBe('--hours needs a value');
    expect(message(['--hours', '-5'])).toBe('--hours needs a value (for a value starting with "-", write --hours=-…)');
    expect(message(['--all=yes'])).toBe('--all takes no value');
    expect(message(['--all', '--all'])).toBe('--all given twice');
    expect(message(['stray'], false)).toBe('unexpected argument "stray"');
  });

  it('reports errors in one line with the exit code; secrets masked, no stack', () => {
    const env = { REDIS_URL: 'redis://ingest:pa55word@h:6380', KAFKA_SASL_PASSWORD: 'k@fka-secret' };
    expect(redact('cannot reach redis://ingest:pa55word@h:6380 with pa55word and k%40fka-secret, k@fka-secret', env)).toBe('cannot reach redis://***@h:6380 with *** and ***, ***');
    registerSecret('from-a-file');
    expect(redact('auth failed for from-a-file', {})).toBe('auth failed for ***');
    expect(errorReport('dlq', new UsageError('unknown command "x"'))).toEqual({ text: 'dlq: unknown command "x"; see --help', code: 2 });
    expect(errorReport('worker', new ConfigError('invalid configuration:\n  - a'))).toEqual({ text: 'worker: invalid configuration:\n  - a', code: 2 });
    const err = new Error('first\n    second');
    expect(errorReport('migrate', err)).toEqual({ text: 'migrate: first second', code: 1 });
    const refused = Object.assign(new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:1'), { code: 'ECONNREFUSED' })], ''), {});
    expect(describeError(refused)).toBe('connect ECONNREFUSED ::1:1');
    expect(describeError(Object.assign(new Error(''), { code: 'ETIMEDOUT' }))).toBe('ETIMEDOUT');
    expect(describeError(new Error('x'.repeat(3_000)))).toHaveLength(2_000);
  });
});

describe('npm run dlq argument parsing', () => {
  it('parses each command', () => {
    expect(parseDlqArgs(['list'])).toEqual({ command: 'list', all: false, json: false });
    expect(parseDlqArgs(['list', '--all', '--json'])).toEqual({ command: 'list', all: true, json: true });
    expect(parseDlqArgs(['show', 'poison-ingest.cost_metrics-0-12-ab'])).toEqual({ command: 'show', id: 'poison-ingest.cost_metrics-0-12-ab' });
    expect(parseDlqArgs(['replay', '--all'])).toEqual({ command: 'replay', all: true });
    expect(parseDlqArgs(['replay', '7'])).toEqual({ command: 'replay', id: '7', all: false });
    expect(parseDlqArgs(['drop', '7'])).toEqual({ command: 'drop', id: '7' });
  });

  const bad: Array<[string[], string]> = [
    [[], 'missing command (list, show, replay, drop)'],
    [['frobnicate'], 'unknown command "frobnicate" (list, show, replay, drop)'],
    [['constructor'], 'unknown command "constructor" (list, show, replay, drop)'],
    [['list', 'x'], 'unexpected argument "x": list takes no id'],
    [['show'], 'show needs a job id'],
    [['show', 'a', 'b'], 'show takes one job id, got 2'],
    [['show', '../etc'], '"../etc" is not a job id (letters, digits, ".", "_" and "-")'],
    [['drop', '--all', 'x'], 'drop takes no --all'],
    [['replay'], 'replay needs a job id or --all'],
    [['replay', '1', '--all'], 'replay takes an id or --all, not both'],
    [['list', '--json', '--json'], '--json given twice'],
  ];
  for (const [argv, message] of bad) {
    it(`refuses ${JSON.stringify(argv)}`, () => {
      expect(() => parseDlqArgs(argv)).toThrow(UsageError);
      expect(() => parseDlqArgs(argv)).toThrow(message);
    });
  }
});
