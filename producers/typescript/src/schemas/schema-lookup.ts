import avsc from 'avsc';
import type { AvroRecordSchema } from './avro-types.js';
import type { EventType } from './event-type.js';
import { HEADER_BYTES, fingerprintOf } from './wire-format.js';

/** How to decode a message written with one writer schema into the current record of its event type. */
export interface DecoderEntry {
  readonly eventType: EventType;
  /** Decodes the datum after the 10-byte single-object header. Throws on malformed bytes. */
  decode(message: Buffer): Record<string, unknown>;
}

/**
 * Maps a writer-schema fingerprint to its decoder. The hot path calls `get` synchronously;
 * a writer schema it does not know makes the message poison (`unknown_fingerprint`) until the
 * worker is upgraded to know it (`previousSchemas`) or is told it with `learn`.
 */
export class SchemaLookup {
  private readonly byFingerprint = new Map<string, DecoderEntry>();

  constructor(readonly eventTypes: readonly EventType[]) {
    for (const type of eventTypes) {
      this.add(type, type.schema);
      for (const old of type.previousSchemas ?? []) this.add(type, old);
    }
  }

  get(fingerprintHex: string): DecoderEntry | undefined {
    return this.byFingerprint.get(fingerprintHex);
  }

  has(fingerprintHex: string): boolean {
    return this.byFingerprint.has(fingerprintHex);
  }

  /**
   * Registers a writer schema (e.g. a newer version published by an upgraded producer) for the
   * event type with the same full name. Avro schema resolution reads it into the current
   * reader schema: fields the reader does not know are skipped, missing ones take defaults.
   * Returns false when no known event type has that record name or resolution is impossible.
   */
  learn(writerSchema: AvroRecordSchema): boolean {
    const fullName = writerSchema.namespace ? `${writerSchema.namespace}.${writerSchema.name}` : writerSchema.name;
    const type = this.eventTypes.find((t) => (t.schema.namespace ? `${t.schema.namespace}.${t.schema.name}` : t.schema.name) === fullName);
    if (!type) return false;
    try {
      this.add(type, writerSchema);
      return true;
    } catch {
      return false;
    }
  }

  private add(type: EventType, writerSchema: AvroRecordSchema): void {
    const writer = avsc.Type.forSchema(writerSchema as unknown as avsc.Schema);
    const fp = fingerprintOf(writer).toString('hex');
    if (this.byFingerprint.has(fp)) return;
    const reader = type.avroType;
    const resolver = writer.equals(reader) ? undefined : reader.createResolver(writer);
    this.byFingerprint.set(fp, {
      eventType: type,
      decode: (message) => {
        const { value, offset } = reader.decode(message, HEADER_BYTES, resolver);
        if (offset !== message.length) throw new Error(offset < 0 ? 'truncated Avro datum' : `${message.length - offset} trailing bytes after the Avro datum`);
        return value as Record<string, unknown>;
      },
    });
  }
}
