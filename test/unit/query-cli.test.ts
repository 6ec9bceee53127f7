import { describe, expect, it } from 'vitest';
import { formatTable, HELPERS, parseQueryArgs, usage, UsageError } from '../../cli/query.js';

describe('npm run query argument parsing', () => {
  it('parses a helper with its flags and format', () => {
    expect(parseQueryArgs(['performance-p95', '--customer-id', 'c', '--service-id=s', '--hours', '24', '--format', 'json'])).toEqual({
      helper: 'performance-p95',
      flags: { 'customer-id': 'c', 'service-id': 's', hours: '24' },
      format: 'json',
    });
    expect(parseQueryArgs(['llm-cost-by-model']).format).toBe('table');
  });

  const bad: Array<[string[], RegExp]> = [
    [[], /missing helper/],
    [['nope'], /unknown helper "nope"/],
    [['lineage', '--individual-id', 'x', '--hours', '3'], /unknown flag --hours for lineage/],
    [['lineage'], /lineage needs --individual-id/],
    [['lineage', '--individual-id'], /--individual-id needs a value/],
    [['lineage', '--individual-id', 'a', '--individual-id', 'b'], /given twice/],
    [['lineage', '--individual-id', 'a', '--format', 'xml'], /--format must be table or json/],
    [['lineage', 'stray'], /unexpected argument/],
  ];
  for (const [argv, message] of bad) {
    it(`refuses ${JSON.stringify(argv)}`, () => {
      expect(() => parseQueryArgs(argv)).toThrow(UsageError);
      expect(() => parseQueryArgs(argv)).toThrow(message);
    });
  }

  it('usage lists every helper', () => {
    for (const name of Object.keys(HELPERS)) expect(usage()).toContain(name);
    expect(Object.keys(HELPERS)).toHaveLength(11);
  });

  it('formats rows as an aligned table', () => {
    expect(formatTable([{ a: 1, bb: 'x' }, { a: 22, bb: null }]).split('\n')).toEqual(['a   bb', '--  ----', '1   x', '22  null']);
    expect(formatTable([])).toBe('(no rows)');
  });
});
