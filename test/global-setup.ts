import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** Starts the real services the integration suites need: the Kafka broker and Redis. */
export default function setup(): void {
  const root = join(import.meta.dirname, '..');
  execFileSync('bash', [join(root, 'scripts/services.sh'), 'start'], { stdio: 'inherit' });
}
