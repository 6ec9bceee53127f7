/**
 * The interpreter the benchmark runs the Python SDK with: the SDK as a user who `pip install`s it
 * gets it, i.e. with fastavro (its default dependency). A venv in the repository's ignored
 * `.cache/python-bench` made from `/usr/bin/python3` with `--system-site-packages` (so it sees
 * Debian's confluent-kafka, and Apache avro) plus `pip install fastavro`, made once and reused.
 * When fastavro cannot be installed (no index reachable), `/usr/bin/python3` with Apache avro,
 * and `note` says why. INGEST_PYTHON, when set, is used as it is. Debian's confluent-kafka and
 * avro are installed first when missing (ensureSystemPythonDeps).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './common.js';

export const SYSTEM_PYTHON = '/usr/bin/python3';
export const BENCH_VENV = join(ROOT, '.cache/python-bench');

export interface BenchPython {
  python: string;
  /** How it was chosen, for the results: INGEST_PYTHON, the fastavro venv, or why not. */
  note: string;
}

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim() };
}

/**
 * The Python SDK's own dependencies (confluent-kafka, Apache avro) on Debian's interpreter,
 * installed as the test command installs them (`producers/python/run-tests.sh --deps`, Debian's
 * packages) when missing: on a fresh machine `npm run bench` would otherwise fail at its Python
 * step with an import error. Throws, saying what to install, when they cannot be.
 */
export function ensureSystemPythonDeps(): void {
  if (run(SYSTEM_PYTHON, ['-c', 'import confluent_kafka, avro']).ok) return;
  process.stderr.write(`bench: ${SYSTEM_PYTHON} lacks confluent_kafka or avro, which the Python SDK needs: installing them (producers/python/run-tests.sh --deps)\n`);
  const r = spawnSync('bash', [join(ROOT, 'producers/python/run-tests.sh'), '--deps'], { stdio: ['ignore', 2, 2], timeout: 600_000 });
  if (r.status !== 0) throw new Error(`the Python SDK's dependencies are missing and producers/python/run-tests.sh --deps failed (exit ${r.status ?? r.signal}): install python3-confluent-kafka and python3-avro, or set INGEST_PYTHON to an interpreter that has them`);
}

/** The venv's python with fastavro, made when missing; throws when it cannot be made. */
export function fastavroVenvPython(base = SYSTEM_PYTHON, dir = BENCH_VENV): string {
  // The venv sees the base's packages (--system-site-packages): confluent-kafka comes from there.
  if (base === SYSTEM_PYTHON) ensureSystemPythonDeps();
  return venvWithFastavro(base, dir);
}

/** fastavroVenvPython once the base's packages are known to be there. */
function venvWithFastavro(base: string, dir: string): string {
  const python = join(dir, 'bin/python');
  if (existsSync(python) && run(python, ['-c', 'import fastavro, confluent_kafka']).ok) return python;
  rmSync(dir, { recursive: true, force: true });
  const made = run(base, ['-m', 'venv', '--system-site-packages', dir]);
  if (!made.ok) throw new Error(`${base} -m venv --system-site-packages ${dir}: ${made.out.slice(-500)}`);
  const pip = run(python, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', 'fastavro']);
  if (!pip.ok) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`pip install fastavro: ${pip.out.split('\n').filter(Boolean).at(-1) ?? 'failed'}`);
  }
  return python;
}

/** INGEST_PYTHON; else the fastavro venv; else /usr/bin/python3 (Apache avro) with the reason. */
export function benchPython(): BenchPython {
  if (process.env.INGEST_PYTHON) return { python: process.env.INGEST_PYTHON, note: 'INGEST_PYTHON' };
  // Outside the try: without them neither the venv nor the fallback below can run the SDK.
  ensureSystemPythonDeps();
  try {
    return { python: venvWithFastavro(SYSTEM_PYTHON, BENCH_VENV), note: `venv ${BENCH_VENV.slice(ROOT.length + 1)} (--system-site-packages, pip install fastavro)` };
  } catch (e) {
    return { python: SYSTEM_PYTHON, note: `fastavro not installable (${e instanceof Error ? e.message : String(e)}): ${SYSTEM_PYTHON} with Apache avro` };
  }
}

// `npx tsx bench/python-env.ts`: prints the fastavro venv's interpreter (made when missing), or
// says why it cannot be made and exits 1. scripts/test.sh runs the Python SDK's unit tests on it.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    process.stdout.write(`${fastavroVenvPython()}\n`);
  } catch (e) {
    process.stderr.write(`python-env: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
