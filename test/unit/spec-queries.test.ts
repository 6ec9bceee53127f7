import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { extractSpec, extractStatements, parseCopy, readCopy, renderCopy, statementHash } from '../helpers/spec-queries.js';

/**
 * The specification's SQL that the tests run is a copy in the repository
 * (test/fixtures/spec-queries.sql). Its statements must be the specification's, unchanged:
 * each hashes to the sha256 stored when it was copied, and, when SPEC_DIR names the
 * specification's directory, the documents still hold exactly these statements.
 */
const root = join(import.meta.dirname, '..', '..');
const SPEC_DIR = process.env.SPEC_DIR;

describe('the in-repository copy of the specification SQL', () => {
  const copy = readCopy();

  it('holds the statements of both documents', () => {
    expect(copy.filter((s) => s.doc === 'evolution-tables.md' && s.kind === 'sql').length).toBeGreaterThan(25);
    expect(copy.filter((s) => s.doc === 'metrics-tables.md' && s.kind === 'shell').map((s) => s.title)).toEqual(['Check Table Sizes', 'Check Partitions']);
  });

  it('every statement hashes to the sha256 stored when it was copied from the specification', () => {
    const drifted = copy.filter((s) => statementHash(s.sql) !== s.storedHash).map((s) => `${s.doc}: ${s.title}`);
    expect(drifted, 'statements edited after they were copied: re-run npm run spec:sync -- <spec dir>, do not edit the copy').toEqual([]);
  });

  it('titles are unique per document, so each test names one statement', () => {
    const keys = copy.map((s) => `${s.doc}|${s.kind}|${s.title}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it.skipIf(!SPEC_DIR)('equals the statements extracted from the specification in SPEC_DIR', () => {
    const spec = extractSpec(SPEC_DIR!);
    expect(copy.map(({ storedHash: _h, ...s }) => s)).toEqual(spec);
    expect(readFileSync(join(root, 'test/fixtures/spec-queries.sql'), 'utf8')).toBe(renderCopy(spec));
  });
});

describe('extracting and checking statements', () => {
  const doc = [
    '### Sizes',
    '```sql',
    '-- First',
    'SELECT 1  ',
    'FROM t;',
    '',
    '-- First',
    'SELECT 2;',
    '-- only a comment',
    '```',
    '```bash',
    'clickhouse-client --query="',
    'SELECT 3',
    '"',
    '```',
  ].join('\n');

  it('splits sql blocks into statements titled by their comment (#n for repeats), and finds shell queries under their heading', () => {
    expect(extractStatements('d.md', doc)).toEqual([
      { doc: 'd.md', kind: 'sql', title: 'First', sql: '-- First\nSELECT 1\nFROM t' },
      { doc: 'd.md', kind: 'sql', title: 'First#2', sql: '-- First\nSELECT 2' },
      { doc: 'd.md', kind: 'shell', title: 'Sizes', sql: 'SELECT 3' },
    ]);
  });

  it('a copy round-trips, and an edited statement no longer matches its stored hash', () => {
    const statements = extractStatements('d.md', doc);
    const parsed = parseCopy(renderCopy(statements));
    expect(parsed.map(({ storedHash: _h, ...s }) => s)).toEqual(statements);
    expect(parsed.every((s) => statementHash(s.sql) === s.storedHash)).toBe(true);
    const edited = parseCopy(renderCopy(statements).replace('SELECT 2', 'SELECT 2 + 0'));
    expect(edited.filter((s) => statementHash(s.sql) !== s.storedHash).map((s) => s.title)).toEqual(['First#2']);
    // Trailing blanks do not count: editors strip them.
    expect(statementHash('SELECT 1  \nFROM t')).toBe(statementHash('SELECT 1\nFROM t'));
  });

  it('refuses a malformed header instead of silently dropping a statement', () => {
    expect(() => parseCopy('-- @spec d.md sql nothex Title\nSELECT 1')).toThrow(/unreadable header/);
  });
});

describe('nothing outside the repository', () => {
  it('no tracked file names an absolute path of this machine outside the clone', () => {
    // Built from parts, so this file does not match itself.
    const needles = ['/' + 'work/', '..' + '/shared'];
    const files = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
    const hits: string[] = [];
    for (const file of files) {
      let text: string;
      try {
        text = readFileSync(join(root, file), 'utf8');
      } catch {
        continue; // a file deleted in the work tree but still tracked
      }
      text.split('\n').forEach((line, i) => {
        if (needles.some((n) => line.includes(n)) || line.includes(root)) hits.push(`${file}:${i + 1}: ${line.trim().slice(0, 120)}`);
      });
    }
    expect(hits).toEqual([]);
  });
});
