import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * Builds the producer package (producers/typescript → dist/) before any test file loads: the
 * tests, the worker and the benchmarks import it by its name, which resolves to the built
 * JavaScript, so a source change must not be tested through a stale build. `tsc -b` is
 * incremental: about a second when nothing changed.
 */
export default function setup(): void {
  const root = join(import.meta.dirname, '..');
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-b', join(root, 'producers/typescript/tsconfig.json')], { stdio: 'inherit' });
}
