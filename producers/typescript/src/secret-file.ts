import { readFileSync } from 'node:fs';

/**
 * The content of a secret file (Docker and Kubernetes secrets mount them as files), without the
 * one trailing newline editors and `echo` add (a password never ends in a newline, and keeping
 * it would make authentication fail mysteriously). Throws an error naming the setting and the
 * path, never the content.
 */
export function readSecretFile(setting: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${setting}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return text.replace(/\r?\n$/, '');
}

/**
 * `env` with each secret `NAME` filled from the file `NAME_FILE` names, when that is set; the
 * worker's loadConfig and the SDK's kafkaSettingsFromEnv both read secrets this way. Setting
 * both is refused (which one wins would be a guess). Problems name variables, never values.
 */
export function resolveSecretFiles(env: NodeJS.ProcessEnv, secrets: readonly string[]): { values: Record<string, string | undefined>; problems: string[] } {
  const values: Record<string, string | undefined> = { ...env };
  const problems: string[] = [];
  for (const name of secrets) {
    const file = env[`${name}_FILE`];
    if (file === undefined || file === '') continue;
    if (env[name] !== undefined && env[name] !== '') {
      problems.push(`${name} and ${name}_FILE are both set; set one`);
      continue;
    }
    try {
      values[name] = readSecretFile(`${name}_FILE`, file);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return { values, problems };
}
