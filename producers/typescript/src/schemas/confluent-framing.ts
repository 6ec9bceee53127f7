/**
 * The Confluent wire format, the Kafka ecosystem's framing of Avro with a schema registry
 * (Confluent's and Apicurio's serializers, ClickHouse's AvroConfluent format, Kafka Connect):
 *   00 | schema id in the registry (4 bytes, big-endian) | Avro binary datum
 * The id names the writer schema; a reader fetches it from the registry once and caches it.
 * Avro single-object encoding (wire-format.ts) starts with C3 01, so the first byte tells the two
 * framings apart, message by message.
 */
export const CONFLUENT_MAGIC = 0x00;
export const CONFLUENT_HEADER_BYTES = 5;

/** The 5-byte header of schema id `id`. */
export function confluentHeader(id: number): Buffer {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError(`schema id must be an unsigned 32-bit integer, got ${id}`);
  const header = Buffer.alloc(CONFLUENT_HEADER_BYTES);
  header[0] = CONFLUENT_MAGIC;
  header.writeUInt32BE(id, 1);
  return header;
}

/** The schema id of a Confluent-framed message, or null when the message is not in that framing. */
export function readSchemaId(message: Buffer): number | null {
  if (message.length < CONFLUENT_HEADER_BYTES || message[0] !== CONFLUENT_MAGIC) return null;
  return message.readUInt32BE(1);
}
