import { Admin, UserError } from '@platformatic/kafka';
import type { Config } from '../lib/config.js';
import { RetriableError } from '../lib/errors.js';
import { platformaticClientOptions, type OAuthBearerProvider } from '../lib/kafka.js';

/**
 * Which log of a topic a partition's offsets belong to.
 *
 * Kafka gives every topic a random id when it is created, so a topic deleted and created again
 * under the same name has a new id. kafkajs 2.2.4 (the last release) speaks only protocol
 * versions that name topics, never their ids: its fetches read whichever log has the name now,
 * and its offset commits land on it. A member whose partitions are paused, or whose inserts are
 * running, may not fetch at all while a topic is deleted and created again, so it never hears
 * of it; an insert of the old log that finishes afterwards would commit an old offset onto the
 * new log, past new records nobody read. So every commit first asks the brokers for the topic's
 * id (consumer-member.ts), and a commit whose assignment started under another id is not sent.
 */

/** The topic's id as the brokers know it now; undefined when no such topic exists. Rejects (retriable) when they cannot be asked. */
export type TopicIdReader = (topic: string) => Promise<string | undefined>;

/**
 * Topic ids read on demand, one read of a topic on the wire at a time. A caller is answered by
 * a read sent after it asked, never by one already on the way: an answer must be at least as
 * new as the insert it checks. Callers that ask while a read is on the way share the next one,
 * so the partitions of a topic committing together cost one read.
 */
export class TopicIds {
  private readonly reads = new Map<string, { running: Promise<string | undefined>; queued: Promise<string | undefined> | undefined }>();

  constructor(private readonly read: TopicIdReader) {}

  /** The topic's id (undefined: no such topic) from a read sent after this call. */
  current(topic: string): Promise<string | undefined> {
    const entry = this.reads.get(topic);
    if (!entry) return this.send(topic);
    return (entry.queued ??= entry.running.then(ignore, ignore).then(() => this.send(topic)));
  }

  private send(topic: string): Promise<string | undefined> {
    const entry = { running: Promise.resolve().then(() => this.read(topic)), queued: undefined as Promise<string | undefined> | undefined };
    this.reads.set(topic, entry);
    // Forgotten once answered, unless callers are queued behind it: their read replaces it.
    const settle = () => {
      if (this.reads.get(topic) === entry && entry.queued === undefined) this.reads.delete(topic);
    };
    entry.running.then(settle, settle);
    return entry.running;
  }
}

const ignore = (): undefined => undefined;

/**
 * Reads topic ids with @platformatic/kafka (Metadata v10+ returns them; kafkajs asks an older
 * version). Its own client: the library answers a metadata call made while an identical one is
 * on the way with that earlier answer, which TopicIds must never be given.
 */
export function platformaticTopicIdReader(config: Config['kafka'], oauthBearerProvider?: OAuthBearerProvider): { read: TopicIdReader; close: () => Promise<void> } {
  let admin: Admin | undefined;
  const client = () =>
    (admin ??= new Admin({ ...platformaticClientOptions(config, 'topic-ids', oauthBearerProvider), retries: 0 }));
  return {
    async read(topic) {
      try {
        const metadata = await client().metadata({ topics: [topic], forceUpdate: true });
        return metadata.topics.get(topic)?.id;
      } catch (err) {
        // The library's answer for UNKNOWN_TOPIC_OR_PARTITION (clients/base/base.js metadata).
        if (err instanceof UserError && err.message.startsWith('Unknown topic')) return undefined;
        throw new RetriableError(`could not read the id of topic ${topic}: ${(err as Error).message}`, { cause: err });
      }
    },
    close: async () => {
      await admin?.close().catch(() => undefined);
    },
  };
}
