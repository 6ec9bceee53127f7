import { join } from 'node:path';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { PACKAGE_ROOT } from '../lib/package-root.js';

/** Where `npm run schemas:export` writes one `<event type name>.avsc` per event type (the repository's, also when compiled). */
export const AVSC_DIR = join(PACKAGE_ROOT, 'schemas', 'avro');

/** The .avsc file of an event type: its schema with docs and defaults, 2-space JSON, trailing newline. */
export function renderAvsc(type: EventType): string {
  return `${JSON.stringify(type.schema, null, 2)}\n`;
}

export function avscPath(type: EventType, dir = AVSC_DIR): string {
  return join(dir, `${type.name}.avsc`);
}
