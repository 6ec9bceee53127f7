import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDockerfile } from '../helpers/dockerfile.js';

/**
 * What can be checked of the image without Docker: the Dockerfile's shape, and that what it
 * copies and runs exists in the sources. test/integration/compiled-worker.test.ts builds dist/
 * and runs the CMD and the HEALTHCHECK for real.
 */
const root = join(import.meta.dirname, '../..');
const steps = readDockerfile(join(root, 'Dockerfile'));
const runtime = steps.filter((s) => s.stage === 'runtime');
const dockerignore = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

describe('Dockerfile', () => {
  it('builds in one stage and ships another, on a Node LTS line', () => {
    const froms = steps.filter((s) => s.keyword === 'FROM').map((s) => s.args.join(' '));
    expect(froms).toEqual(['node:${NODE_VERSION}-slim AS build', 'node:${NODE_VERSION}-slim AS runtime']);
    const arg = steps.find((s) => s.keyword === 'ARG' && s.args[0]!.startsWith('NODE_VERSION='));
    // Even majors are the LTS lines; 20 reached its end of life in April 2026.
    const major = Number(arg?.args[0]!.split('=')[1]);
    expect(major % 2).toBe(0);
    expect(major).toBeGreaterThanOrEqual(22);
  });

  it('compiles in the build stage and installs production dependencies only in the runtime stage', () => {
    const runs = (stage: string) => steps.filter((s) => s.stage === stage && s.keyword === 'RUN').map((s) => s.args.join(' '));
    expect(runs('build').some((r) => r.includes('npm run build'))).toBe(true);
    const installs = runs('runtime').filter((r) => /\bnpm (ci|install)\b/.test(r));
    expect(installs).toHaveLength(1);
    expect(installs[0]).toContain('--omit=dev');
    expect(runs('runtime').join(' ')).not.toMatch(/\btsx\b|npm run build/);
  });

  it('copies only sources that exist and that .dockerignore lets into the build context', () => {
    const sources = steps.filter((s) => s.keyword === 'COPY' && !s.flags.from).flatMap((s) => s.args.slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const src of sources) {
      expect(existsSync(join(root, src)), src).toBe(true);
      const top = src.split('/')[0]!;
      expect(dockerignore.includes(src) || dockerignore.includes(top), `${src} is excluded by .dockerignore`).toBe(false);
    }
    // The build stage compiles with tsconfig.build.json, which extends tsconfig.json: both in the context.
    expect(sources).toEqual(expect.arrayContaining(['tsconfig.json', 'tsconfig.build.json', 'sql/migrations']));
  });

  it('runs the compiled worker as an unprivileged user, with exec-form CMD and HEALTHCHECK', () => {
    expect(runtime.filter((s) => s.keyword === 'USER').map((s) => s.args[0])).toEqual(['node']);
    const cmd = runtime.find((s) => s.keyword === 'CMD')!;
    expect(cmd.exec).toBe(true);
    expect(cmd.args[0]).toBe('node');
    const script = cmd.args.at(-1)!;
    expect(script).toBe('dist/consumers/main.js');
    // dist/X.js is compiled from X.ts by tsconfig.build.json.
    expect(existsSync(join(root, script.replace(/^dist\//, '').replace(/\.js$/, '.ts')))).toBe(true);
    const build = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')) as { include: string[]; compilerOptions: { outDir: string } };
    expect(build.compilerOptions.outDir).toBe('dist');
    expect(build.include).toEqual(expect.arrayContaining(['consumers', 'cli', 'lib', 'sql', 'schemas']));
    const health = runtime.find((s) => s.keyword === 'HEALTHCHECK')!;
    expect(health.exec).toBe(true);
    expect(health.args.slice(0, 2)).toEqual(['node', '-e']);
    expect(health.args[2]).toContain('/healthz');
    expect(health.flags).toMatchObject({ interval: expect.any(String), timeout: expect.any(String), 'start-period': expect.any(String) });
  });
});
