import { readFileSync, readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PYTHON_SCHEMA_DIR, renderPythonSdkFiles } from '../../producers/python/scripts/sync-schemas.js';
import { AVSC_DIR } from '../../schemas/avsc-files.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';

/**
 * The Python SDK ships copies of what the TS definitions say (the .avsc files, the partition
 * keys, time, JSON and auto fields, bounds) and is tested against the bytes the TS SDK writes
 * (test/fixtures/sdk-wire-cases.json). Regenerate with `npx tsx producers/python/scripts/sync-schemas.ts`.
 */
describe('Python SDK packaged schemas: no drift from the TS definitions', () => {
  const files = renderPythonSdkFiles();

  for (const [path, text] of files) {
    it(`${basename(dirname(path))}/${basename(path)} is what sync-schemas.ts writes`, () => {
      expect(readFileSync(path, 'utf8'), `${path} is stale: run npx tsx producers/python/scripts/sync-schemas.ts`).toBe(text);
    });
  }

  it('the packaged .avsc files are exactly schemas/avro/, one per event type, nothing more', () => {
    const packaged = readdirSync(PYTHON_SCHEMA_DIR).filter((f) => f.endsWith('.avsc')).sort();
    expect(packaged).toEqual(eventTypes.map((t) => `${t.name}.avsc`).sort());
    for (const f of packaged) expect(readFileSync(`${PYTHON_SCHEMA_DIR}/${f}`, 'utf8'), f).toBe(readFileSync(`${AVSC_DIR}/${f}`, 'utf8'));
  });

  it('the wire cases cover every event type, with partitions for counts that are not powers of two', () => {
    const { cases } = JSON.parse(files.get([...files.keys()].find((p) => p.endsWith('sdk-wire-cases.json'))!)!) as { cases: { type: string; partitions: Record<string, number> }[] };
    expect(new Set(cases.map((c) => c.type))).toEqual(new Set(eventTypes.map((t) => t.name)));
    expect(Object.keys(cases[0]!.partitions)).toEqual(expect.arrayContaining(['3', '6']));
    // The cases must spread over partitions, or a wrong partitioner could pass by luck.
    expect(new Set(cases.map((c) => c.partitions['6'])).size).toBeGreaterThanOrEqual(4);
  });
});
