import { EXIT_CODES, EXIT_OK, parseCommandLine, runCommand, UsageError } from '../lib/cli.js';

/**
 * `npm run schemas:export [-- <dir>]`: writes <dir>/<name>.avsc (default schemas/avro) for every
 * event type, for consumers outside this codebase (any Avro library).
 * test/unit/schemas.test.ts fails when the committed files differ from what this writes.
 */
export const USAGE = `usage: npm run schemas:export [-- <dir>]
  Writes <dir>/<event type>.avsc for every event type (the Avro schema with docs and defaults).
  <dir>       where to write; created when missing (default: the repository's schemas/avro)
  -h, --help  this text
${EXIT_CODES}`;

await runCommand('schemas:export', USAGE, async (argv) => {
  const { positionals } = parseCommandLine(argv, {}, true);
  if (positionals.length > 1) throw new UsageError(`one output directory at most, got ${positionals.length}`);
  if (positionals[0] === '') throw new UsageError('the output directory is empty');
  // Loaded after the arguments are checked: --help and a bad argument need none of it.
  const { mkdirSync, renameSync, writeFileSync } = await import('node:fs');
  const { AVSC_DIR, avscPath, renderAvsc } = await import('../schemas/avsc-files.js');
  const { eventTypes } = await import('@kafka-clickhouse-ingest/producer/schemas');
  const dir = positionals[0] ?? AVSC_DIR;
  mkdirSync(dir, { recursive: true });
  for (const type of eventTypes) {
    const path = avscPath(type, dir);
    // Written aside and renamed over: a reader (test/unit/schemas.test.ts) never sees half a file.
    writeFileSync(`${path}.${process.pid}.tmp`, renderAvsc(type));
    renameSync(`${path}.${process.pid}.tmp`, path);
    console.log(`wrote ${path}`);
  }
  return EXIT_OK;
});
