import { z } from 'zod';
import { ConfigError, issueMessage } from './kafka-settings.js';
import { resolveSecretFiles } from './secret-file.js';

/**
 * The schema registry settings the worker and the producer SDK share (docs/schema-registry.md),
 * named as the peers name them (Confluent's `schema.registry.url`, `basic.auth.user.info`,
 * `bearer.auth.token`, `schema.registry.ssl.ca.location`). One parser, so a value the worker
 * refuses the SDK refuses too, with the same message; never with a secret's value.
 */
export const REGISTRY_SETTINGS = {
  /**
   * Base URL of the registry's Confluent-compatible API: Confluent Schema Registry
   * (http://host:8081), Apicurio (http://host:8080/apis/ccompat/v6), Karapace, Redpanda.
   * Env SCHEMA_REGISTRY_URL. Unset: no registry.
   */
  url: z.string().url().refine((u) => /^https?:\/\//.test(u), 'an http:// or https:// URL').refine((u) => !new URL(u).password, 'put the password in SCHEMA_REGISTRY_PASSWORD, not in the URL'),
  /** Basic auth user (Confluent Cloud: the API key). Env SCHEMA_REGISTRY_USERNAME (or _FILE). */
  username: z.string().min(1).optional(),
  /** Secret: basic auth password (Confluent Cloud: the API secret). Env SCHEMA_REGISTRY_PASSWORD (or _FILE). */
  password: z.string().min(1).optional(),
  /** Secret: a bearer token, instead of basic auth. Env SCHEMA_REGISTRY_TOKEN (or _FILE). */
  token: z.string().min(1).optional(),
  /** PEM CA bundle an https:// registry's certificate must chain to; unset: the system CAs. Env SCHEMA_REGISTRY_CA_CERT. */
  caCert: z.string().min(1).optional(),
};

const registrySchema = z.strictObject({
  url: REGISTRY_SETTINGS.url,
  username: REGISTRY_SETTINGS.username,
  password: REGISTRY_SETTINGS.password,
  token: REGISTRY_SETTINGS.token,
  caCert: REGISTRY_SETTINGS.caCert,
});

/** Where the registry is and how to reach it. */
export type RegistrySettings = z.infer<typeof registrySchema>;

/** Environment variable → setting. */
export const REGISTRY_ENV: Readonly<Record<string, keyof RegistrySettings>> = {
  SCHEMA_REGISTRY_URL: 'url',
  SCHEMA_REGISTRY_USERNAME: 'username',
  SCHEMA_REGISTRY_PASSWORD: 'password',
  SCHEMA_REGISTRY_TOKEN: 'token',
  SCHEMA_REGISTRY_CA_CERT: 'caCert',
};

/** Registry settings that may hold a secret: also read from `<NAME>_FILE`, never echoed. */
export const REGISTRY_SECRET_ENV = ['SCHEMA_REGISTRY_USERNAME', 'SCHEMA_REGISTRY_PASSWORD', 'SCHEMA_REGISTRY_TOKEN'] as const;

/** The rules between the registry settings, naming each setting with `name`. */
export function registryProblems(s: Partial<RegistrySettings>, name: (field: keyof RegistrySettings) => string): string[] {
  const problems: string[] = [];
  if ((s.username === undefined) !== (s.password === undefined)) problems.push(`${name('username')} and ${name('password')} go together (basic auth)`);
  if (s.token !== undefined && s.username !== undefined) problems.push(`give either ${name('token')} (bearer) or ${name('username')}/${name('password')} (basic auth), not both`);
  if (s.caCert !== undefined && s.url !== undefined && !s.url.startsWith('https://')) problems.push(`${name('caCert')} needs an https:// ${name('url')}`);
  if (s.url === undefined && Object.values(s).some((v) => v !== undefined)) problems.push(`${name('url')} is required with the other registry settings`);
  return problems;
}

/**
 * The SCHEMA_REGISTRY_* variables, each checked; undefined when SCHEMA_REGISTRY_URL is unset (and
 * no other is set). Throws a ConfigError listing every bad one by variable, without a secret's value.
 */
export function registrySettingsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<RegistrySettings> {
  const { values, problems } = resolveSecretFiles(env, REGISTRY_SECRET_ENV);
  const out: Partial<RegistrySettings> = {};
  for (const [name, field] of Object.entries(REGISTRY_ENV)) {
    const value = values[name];
    if (value === undefined || value === '') continue;
    const parsed = REGISTRY_SETTINGS[field].safeParse(value);
    if (!parsed.success) {
      const secret = (REGISTRY_SECRET_ENV as readonly string[]).includes(name) || field === 'url';
      for (const issue of parsed.error.issues) problems.push(`${name}: ${issueMessage(issue.message, secret)}`);
      continue;
    }
    (out as Record<string, unknown>)[field] = parsed.data;
  }
  if (problems.length > 0) throw new ConfigError(`invalid schema registry settings in the environment:\n  - ${problems.join('\n  - ')}`);
  return out;
}

/** The variable of a registry setting, for messages. */
export function registryEnvName(field: keyof RegistrySettings): string {
  return Object.entries(REGISTRY_ENV).find(([, f]) => f === field)![0];
}

/** Parses settings given in code (the SDK's `schemaRegistry` option), naming each problem by `name`. */
export function parseRegistrySettings(given: Partial<RegistrySettings>, name: (field: keyof RegistrySettings) => string): RegistrySettings {
  const problems = registryProblems(given, name);
  const parsed = registrySchema.safeParse(given);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = String(issue.path[0]) as keyof RegistrySettings;
      problems.push(`${name(field)}: ${issueMessage(issue.message, field !== 'caCert')}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid schema registry settings:\n  - ${problems.join('\n  - ')}`);
  return parsed.data!;
}
