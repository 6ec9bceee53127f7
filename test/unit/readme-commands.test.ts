import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Every command the README shows is run by a test or by the demo: each command line of its
 * ```bash blocks and each `$ ` line of its other blocks must be listed here with the file that
 * runs it and the text in that file that does. A new command in the README fails this test until
 * something runs it; a runner that stops running it fails it too.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

const RUN_BY: Record<string, { file: string; text: string }> = {
  // The test command runs the main job once; CI runs the test command.
  'bash scripts/demo.sh': { file: 'scripts/test.sh', text: 'bash scripts/demo.sh --once' },
  'bash scripts/test.sh': { file: '.ci/run', text: 'bash scripts/test.sh' },
  // The query the demo prints, run while the demo's worker streams.
  'npm run query -- fitness-trajectory --run-id <run id>': { file: 'test/integration/demo.test.ts', text: "query(['fitness-trajectory', '--run-id', runId" },
  // The SDK as another project installs it: npm pack, then npm install of the tarball.
  '(cd producers/typescript && npm pack)': { file: 'test/integration/sdk-package.test.ts', text: '`npm pack` of producers/typescript' },
  'npm install <tarball of producers/typescript>': { file: 'test/integration/sdk-package.test.ts', text: "run('npm', ['install'" },
  // The Python package built from the folder and installed into a fresh venv.
  'pip install ./producers/python': { file: 'test/integration/python-sdk-wheel.test.ts', text: "'pip', 'wheel'" },
};

/** A README command in the form RUN_BY lists it: comments dropped, the demo's run id and the clone's path generic. */
function normalise(line: string): string {
  return line
    .replace(/\s+#.*$/, '')
    .trim()
    .replace(/--run-id run_demo_\d+/, '--run-id <run id>')
    .replace(/^npm install \/path\/to\/kafka-clickhouse-ingest\/producers\/typescript\/\S+\.tgz$/, 'npm install <tarball of producers/typescript>');
}

function readmeCommands(text: string): string[] {
  const commands: string[] = [];
  for (const [, lang, body] of text.matchAll(/```(\w*)\n([\s\S]*?)```/g)) {
    for (const line of body!.split('\n')) {
      if (lang === 'bash' || lang === 'sh') {
        if (line.trim() && !line.trim().startsWith('#')) commands.push(normalise(line));
      } else if (line.startsWith('$ ')) commands.push(normalise(line.slice(2)));
    }
  }
  return commands;
}

describe('README commands', () => {
  const commands = readmeCommands(readme);

  it('the README stays short and shows the two commands', () => {
    expect(readme.split('\n').length).toBeLessThan(150);
    expect(commands).toContain('bash scripts/demo.sh');
    expect(commands).toContain('bash scripts/test.sh');
  });

  it('every command is run by a test or the demo', () => {
    expect(commands.filter((c) => !RUN_BY[c]), 'README commands nothing runs (add the runner to RUN_BY)').toEqual([]);
    for (const c of commands) {
      const { file, text } = RUN_BY[c]!;
      expect(readFileSync(join(root, file), 'utf8'), `${c}: run by ${file}`).toContain(text);
    }
  });
});
