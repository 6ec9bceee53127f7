import avsc from 'avsc';
import type { AvroRecordSchema } from './avro-types.js';
import type { EventType } from './event-type.js';
import { CONFLUENT_HEADER_BYTES } from './confluent-framing.js';
import { HEADER_BYTES, fingerprintOf } from './wire-format.js';

/** How to decode a message written with one writer schema into the current record of its event type. */
export interface DecoderEntry {
  readonly eventType: EventType;
  /** Decodes the datum after the header (10 bytes single-object, 5 Confluent). Throws on malformed bytes. */
  decode(message: Buffer): Record<string, unknown>;
}

/** A registry schema id that can never be decoded, and why (the poison letter's detail). */
export interface RefusedSchemaId {
  readonly refused: string;
}

/**
 * Maps a writer-schema fingerprint to its decoder. The hot path calls `get` synchronously;
 * a writer schema it does not know makes the message poison (`unknown_fingerprint`) until the
 * worker is upgraded to know it (`previousSchemas`) or is told it with `learn`.
 */
export class SchemaLookup {
  private readonly byFingerprint = new Map<string, DecoderEntry>();
  /**
   * Confluent framing: writer schemas by registry id, filled by the worker's registry lookup
   * (consumers/schema-registry.ts) before a message with that id is decoded. A registry id names
   * one schema for ever, so an entry never goes stale.
   */
  private readonly byRegistryId = new Map<number, DecoderEntry | RefusedSchemaId>();

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

  /** The decoder of a registry schema id, its refusal, or undefined when not yet looked up. */
  getRegistered(id: number): DecoderEntry | RefusedSchemaId | undefined {
    return this.byRegistryId.get(id);
  }

  hasRegistered(id: number): boolean {
    return this.byRegistryId.has(id);
  }

  /**
   * Learns the writer schema of registry id `id`: it resolves into the reader schema of the event
   * type with the same full name (Avro schema resolution, as for fingerprints). Returns the
   * entry, or the refusal when no event type has that record name or resolution is impossible.
   */
  learnRegistered(id: number, writerSchema: AvroRecordSchema): DecoderEntry | RefusedSchemaId {
    // A dotted name is already full (Avro spec, "Names"); avsc exports names that way.
    const fullName = writerSchema.name.includes('.') || !writerSchema.namespace ? writerSchema.name : `${writerSchema.namespace}.${writerSchema.name}`;
    const type = this.eventTypes.find((t) => (t.schema.namespace ? `${t.schema.namespace}.${t.schema.name}` : t.schema.name) === fullName);
    let entry: DecoderEntry | RefusedSchemaId;
    if (!type) {
      entry = { refused: `schema id ${id} is record ${fullName}, which no event type of this worker reads` };
    } else {
      try {
        entry = this.entry(type, avsc.Type.forSchema(writerSchema as unknown as avsc.Schema), CONFLUENT_HEADER_BYTES);
      } catch (err) {
        entry = { refused: `schema id ${id} cannot be read as ${type.name}'s current schema: ${(err as Error).message}` };
      }
    }
    this.byRegistryId.set(id, entry);
    return entry;
  }

  /** Marks registry id `id` as never decodable (the registry has no such id, or it is no Avro record). */
  refuseRegistered(id: number, why: string): RefusedSchemaId {
    const entry = { refused: why };
    this.byRegistryId.set(id, entry);
    return entry;
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
    this.byFingerprint.set(fp, this.entry(type, writer, HEADER_BYTES));
  }

  /** Throws when the writer schema cannot be resolved into the type's reader schema. */
  private entry(type: EventType, writer: avsc.Type, headerBytes: number): DecoderEntry {
    const reader = type.avroType;
    const resolver = writer.equals(reader) ? undefined : reader.createResolver(writer);
    return {
      eventType: type,
      decode: (message) => {
        const { value, offset } = reader.decode(message, headerBytes, resolver);
        if (offset !== message.length) throw new Error(offset < 0 ? 'truncated Avro datum' : `${message.length - offset} trailing bytes after the Avro datum`);
        return value as Record<string, unknown>;
      },
    };
  }
}
