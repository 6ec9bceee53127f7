import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ENV, configSchema, loadConfig } from '../../lib/config.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';

/**
 * Keeps docs/configuration.md and docs/event-types.md true to the code: every setting and
 * environment variable is documented with its real default, and every event type with its
 * topic, table, key, event-time field, fields and current fingerprint.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** Cells of every markdown table row (`| a | b |`), trimmed; `\|` stays inside a cell. */
function tableRows(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => /^\|.*\|\s*$/.test(line) && !/^\|\s*-{3}/.test(line))
    .map((line) =>
      line
        .trim()
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim()),
    );
}

/** First `code span` of a cell, or undefined when it has none. */
const code = (cell: string | undefined) => (cell === undefined ? undefined : /`([^`]*)`/.exec(cell)?.[1]);

describe('docs/configuration.md', () => {
  const doc = read('docs/configuration.md');
  /** Setting rows: | env variable | config path | default | … |, keyed by config path. */
  const settings = new Map<string, { env: string; defaultCell: string }>();
  for (const cells of tableRows(doc)) {
    const path = /^`([a-z][A-Za-z]*\.[a-z][A-Za-z]*)`$/.exec(cells[1] ?? '')?.[1];
    if (!path) continue;
    expect(settings.has(path), `${path} is documented once`).toBe(false);
    settings.set(path, { env: code(cells[0]) ?? '—', defaultCell: cells[2] ?? '' });
  }

  // The worker's variables, the Kafka connection ones included (the producer package's KAFKA_ENV).
  const envEntries = Object.entries(ENV).map(([name, [section, key]]) => ({ name, path: `${section}.${key}` }));

  const schemaPaths = Object.entries(configSchema.shape).flatMap(([section, schema]) => Object.keys(schema.shape).map((key) => `${section}.${key}`));

  it('the ENV map of lib/config.ts maps to real config paths', () => {
    expect(envEntries.length).toBeGreaterThan(20);
    for (const { name, path } of envEntries) expect(schemaPaths, `${name} → ${path}`).toContain(path);
  });

  it('documents every environment variable of the ENV map, on the row of its config path', () => {
    const missing = envEntries.filter(({ name, path }) => settings.get(path)?.env !== name).map(({ name, path }) => `${name} (${path})`);
    expect(missing, 'env variables missing from docs/configuration.md or on the wrong row').toEqual([]);
  });

  it('documents every setting of configSchema, and no setting that does not exist', () => {
    expect(schemaPaths.filter((p) => !settings.has(p))).toEqual([]);
    expect([...settings.keys()].filter((p) => !schemaPaths.includes(p))).toEqual([]);
  });

  it('rows without an env variable are really override-only', () => {
    const mapped = new Set(envEntries.map((e) => e.path));
    const stale = [...settings].filter(([path, { env }]) => env === '—' && mapped.has(path)).map(([path]) => path);
    expect(stale).toEqual([]);
  });

  it('every documented default equals what loadConfig({}) returns', () => {
    const defaults = loadConfig({}) as unknown as Record<string, Record<string, unknown>>;
    const wrong: string[] = [];
    for (const [path, { defaultCell }] of settings) {
      const [section, key] = path.split('.') as [string, string];
      const actual = defaults[section]?.[key];
      const documented = code(defaultCell);
      if (actual === undefined) {
        if (documented !== undefined || !/unset/.test(defaultCell)) wrong.push(`${path}: documented ${JSON.stringify(defaultCell)}, actual default: unset`);
      } else if (documented !== String(actual)) {
        wrong.push(`${path}: documented ${JSON.stringify(documented)}, actual ${JSON.stringify(String(actual))}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe('docs/event-types.md', () => {
  const doc = read('docs/event-types.md');
  const rows = tableRows(doc);
  const prefix = loadConfig({}).kafka.topicPrefix;

  it('names every event type and table', () => {
    const missing = eventTypes.flatMap((t) => [t.name, t.table].filter((s) => !doc.includes(`\`${s}\``)));
    expect(missing).toEqual([]);
  });

  it('the overview table has every event type with its topic, table, partition key and event-time field', () => {
    for (const t of eventTypes) {
      const row = rows.find((cells) => cells[0] === `\`${t.name}\``);
      expect(row, `overview row of ${t.name}`).toBeDefined();
      const [, topic, table, key, time] = row!;
      expect(code(topic), `${t.name} topic`).toBe(`${prefix}${t.name}`);
      expect(code(table), `${t.name} table`).toBe(t.table);
      expect(code(key), `${t.name} partition key`).toBe(t.partitionKey);
      expect(code(time), `${t.name} event-time field`).toBe(t.timestampField);
    }
  });

  it('each event type section lists exactly its fields and its current fingerprint', () => {
    for (const t of eventTypes) {
      const start = doc.indexOf(`#### \`${t.name}\``);
      expect(start, `section of ${t.name}`).toBeGreaterThanOrEqual(0);
      const next = doc.indexOf('\n#### ', start + 1);
      const section = doc.slice(start, next < 0 ? undefined : next);
      expect(section, `${t.name} fingerprint`).toContain(`\`${t.fingerprint.toString('hex')}\``);
      const documented = tableRows(section)
        .map((cells) => code(cells[0]))
        .filter((f): f is string => f !== undefined);
      expect(documented, `${t.name} fields`).toEqual(t.fieldNames);
    }
  });
});
