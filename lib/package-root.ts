import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository's (the package's) root directory: the nearest directory above this module
 * that holds package.json. The same answer whether this runs from its TypeScript source (lib/)
 * or compiled (dist/lib/), so files read at run time (sql/migrations, schemas/avro) are found
 * in one place and the build need not copy them into dist/.
 */
export const PACKAGE_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}
