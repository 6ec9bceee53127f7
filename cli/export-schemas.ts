import { mkdirSync, writeFileSync } from 'node:fs';
import { AVSC_DIR, avscPath, renderAvsc } from '../schemas/avsc-files.js';
import { eventTypes } from '../schemas/index.js';

/**
 * `npm run schemas:export [-- <dir>]`: writes schemas/avro/<name>.avsc for every event type,
 * for consumers outside this codebase (any Avro library). test/unit/schemas.test.ts fails when
 * the committed files differ from what this writes.
 */
const dir = process.argv[2] ?? AVSC_DIR;
mkdirSync(dir, { recursive: true });
for (const type of eventTypes) {
  const path = avscPath(type, dir);
  writeFileSync(path, renderAvsc(type));
  console.log(`wrote ${path}`);
}
