import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { registryErrorMessage, registryStatusOf, withRegistryTimeout } from './schema-registry-client.js';
import type { EventType } from './schemas/event-type.js';
import { confluentHeader } from './schemas/confluent-framing.js';

/** The registry refused (or could not take) an event type's schema: the emit call fails with the registry's message. */
export class SchemaRegistrationError extends Error {
  override readonly name = 'SchemaRegistrationError';
  constructor(
    readonly eventType: string,
    readonly subject: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The producer's side of the Confluent wire format: each event type's schema registered under its
 * topic's subject (`<topic>-value`, TopicNameStrategy, as Confluent's serializers do by default)
 * at its first emit, then the 5-byte header with the schema id on every message. The registry
 * answers a schema it has with the id it gave it, and checks a new one against the subject's
 * compatibility level (an incompatible one is refused, with the registry's message).
 */
export class SchemaRegistration {
  private readonly headers = new Map<string, Buffer>();
  private readonly pending = new Map<string, Promise<Buffer>>();
  /** Registrations run one at a time: some registries (Apicurio's embedded store) fail concurrent ones. */
  private last: Promise<unknown> = Promise.resolve();

  constructor(private readonly client: SchemaRegistry) {}

  /** The header of `topic`'s messages, once its schema is registered; synchronous for the hot path. */
  cached(topic: string): Buffer | undefined {
    return this.headers.get(topic);
  }

  /** Registers `type`'s schema under `topic`'s subject (once; concurrent calls share it); rejects with SchemaRegistrationError. */
  header(topic: string, type: EventType): Promise<Buffer> {
    const ready = this.headers.get(topic);
    if (ready) return Promise.resolve(ready);
    let pending = this.pending.get(topic);
    if (!pending) {
      const subject = `${topic}-value`;
      const text = registrySchemaText(type.schema);
      pending = this.last
        .catch(() => undefined)
        .then(() => registerWithRetries(this.client, subject, text))
        .then(
          ({ id }) => {
            const header = confluentHeader(id);
            this.headers.set(topic, header);
            return header;
          },
          (err: unknown) => {
            throw new SchemaRegistrationError(type.name, subject, `${type.name}: the schema registry did not register its schema under subject ${subject}: ${registryErrorMessage(err)}`, { cause: err });
          },
        )
        .finally(() => this.pending.delete(topic));
      this.pending.set(topic, pending);
      this.last = pending;
    }
    return pending;
  }

  /** Registrations under way (flush and close wait for the emit calls behind them). */
  get inFlight(): number {
    return this.pending.size;
  }
}

/**
 * The schema's JSON for the registry, with the string "{}" written as "\u007b}" (the same JSON
 * value). Apicurio Registry 2.x rewrites `: "{}"` to `:{}` in a schema before detecting its type
 * (its ccompat layer's removeQuotedBrackets), which breaks a string field whose default is "{}"
 * (our JSON fields): it would refuse to register the schema, and to serve it by id. Any JSON
 * reader, Confluent's registry included, reads the escaped form as the same schema.
 */
export function registrySchemaText(schema: unknown): string {
  return JSON.stringify(schema).replace(/"\{\}"/g, '"\\u007b}"');
}

/** Attempts of a registration that fails with a 5xx or no answer, 100 ms apart, doubling (about 3 s in all). */
const REGISTER_ATTEMPTS = 5;

/**
 * Registers, trying again while the registry fails in a way that may pass (a 5xx, no answer).
 * A 4xx (409 incompatible, 422 invalid, 401/403) is the registry's answer: no retry.
 */
async function registerWithRetries(client: SchemaRegistry, subject: string, schema: string): Promise<{ id: number }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await withRegistryTimeout(registerUnderSubject(client, subject, schema), `registering under subject ${subject}`);
    } catch (err) {
      const status = registryStatusOf(err);
      if (attempt >= REGISTER_ATTEMPTS || (status !== undefined && status < 500)) throw err;
      await new Promise((r) => setTimeout(r, 100 * 2 ** (attempt - 1)));
    }
  }
}

/**
 * POST /subjects/{subject}/versions through the client's own API layer (its auth, TLS, retries
 * and error mapping). Not its `register()`: that first compares the subject's own compatibility
 * level with one the caller expects and refuses when they differ, and registries answer that
 * question differently (Apicurio reports NONE for a subject without a rule of its own, while its
 * global level applies). The registry checks compatibility itself when it registers, which is
 * the check that matters; its refusal (409) comes back with its message.
 */
async function registerUnderSubject(client: SchemaRegistry, subject: string, schema: string): Promise<{ id: number }> {
  const api = (client as unknown as { api: { Subject: { register(req: { subject: string; body: { schema: string } }): Promise<{ data(): { id: number } }> } } }).api;
  const response = await api.Subject.register({ subject, body: { schema } });
  return response.data();
}
