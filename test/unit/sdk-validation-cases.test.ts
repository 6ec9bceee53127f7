import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { EventValidationError, toEventRecord } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';

/**
 * The shared fixture of good and bad events (test/fixtures/sdk-validation-cases.json), through
 * the TS SDK's validation exactly as EventProducer.emit runs it (event by event, with its index).
 * producers/python/tests/test_validation_cases.py runs the same cases through the Python SDK.
 */
interface Case {
  name: string;
  type: string;
  events: unknown[];
  error: { field: string; index: number } | null;
  expect?: Record<string, unknown>;
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/sdk-validation-cases.json', import.meta.url), 'utf8')) as {
  now: number;
  cases: Case[];
  json: { value: unknown; text: string }[];
};

/** {"$number": "NaN"} and the like stand for the numbers JSON cannot write. */
function revive(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (Object.keys(o).length === 1 && typeof o.$number === 'string') return Number(o.$number);
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, revive(v)]));
  }
  return value;
}

function emitLike(typeName: string, events: unknown[], now: number): Record<string, unknown>[] {
  const type = eventTypes.find((t) => t.name === typeName)!;
  return events.map((e, i) => toEventRecord(type, e, i, now));
}

describe('shared SDK validation cases (TS SDK)', () => {
  it('the fixture has good and bad cases of several event types', () => {
    expect(fixture.cases.filter((c) => c.error === null).length).toBeGreaterThanOrEqual(10);
    expect(fixture.cases.filter((c) => c.error !== null).length).toBeGreaterThanOrEqual(20);
    expect(new Set(fixture.cases.map((c) => c.type)).size).toBeGreaterThanOrEqual(6);
  });

  for (const c of fixture.cases) {
    if (c.error === null) {
      it(`accepts: ${c.type}: ${c.name}`, () => {
        const records = emitLike(c.type, revive(c.events) as unknown[], fixture.now);
        expect(records).toHaveLength(c.events.length);
        for (const [field, want] of Object.entries(c.expect ?? {})) expect(records[0]![field], field).toEqual(want === '$now' ? fixture.now : want);
      });
    } else {
      const { field, index } = c.error;
      it(`refuses: ${c.type}: ${c.name} (field ${field}, index ${index})`, () => {
        let error: unknown;
        try {
          emitLike(c.type, revive(c.events) as unknown[], fixture.now);
        } catch (err) {
          error = err;
        }
        expect(error).toBeInstanceOf(EventValidationError);
        const e = error as EventValidationError;
        expect({ eventType: e.eventType, field: e.field, index: e.index }).toEqual({ eventType: c.type, field, index });
        expect(e.message).toContain(`${c.type}[${index}].${field}: `);
      });
    }
  }

  it('JSON text of dict fields: JSON.stringify', () => {
    for (const j of fixture.json) expect(JSON.stringify(revive(j.value))).toBe(j.text);
  });
});
