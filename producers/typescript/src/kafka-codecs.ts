import { compress as zstdCompress, decompress as zstdDecompress } from '@mongodb-js/zstd';
import kafkajs from 'kafkajs';
import { compressFrameSync as lz4CompressFrame, decompressFrameSync as lz4DecompressFrame } from 'lz4-napi';
import { compressSync as snappyCompress, uncompressSync as snappyUncompress } from 'snappy';
import { unzipSync } from 'node:zlib';

const { CompressionCodecs, CompressionTypes } = kafkajs;

/** The record-batch codecs of the Kafka protocol (the Java client's `compression.type` values). */
export const KAFKA_CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type KafkaCodec = (typeof KAFKA_CODECS)[number];

/** kafkajs's number for each codec: the low 3 bits of a record batch's attributes. */
export const KAFKAJS_COMPRESSION: Readonly<Record<KafkaCodec, kafkajs.CompressionTypes>> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

/** zstd level 3: the zstd library's and the Java client's default. */
const ZSTD_LEVEL = 3;

let installed = false;

/**
 * Registers every Kafka codec with kafkajs, which ships only gzip and throws
 * KafkaJSNotImplemented on any other record batch: one snappy batch from a Java or librdkafka
 * producer (or a topic whose `compression.type` imposes a codec) would fail the fetch of its
 * whole partition, and the batches behind it would never be read.
 *
 * No codec stalls the event loop longer than gzip: a record batch is at most the producer's
 * request size (1 MB by default); per 1 MB batch (docs/architecture.md, "Record-batch codecs")
 * gzip inflates in about 3.7 ms, snappy 1.5, lz4 1.7, both synchronous; zstd runs on the thread pool.
 * - gzip: `unzipSync` instead of kafkajs's async `unzip`. kafkajs decodes a fetch response one
 *   batch at a time, awaiting each batch's decompress before the next, so the async version is
 *   one thread-pool round trip per batch, interleaved with the worker's decode slices;
 *   inflating in place measured +10% rows/s in alternated 2M-row drains (BENCHMARKS.md).
 * - snappy: the `snappy` package (Rust snap, prebuilt per-platform npm packages). Java's client
 *   wraps snappy blocks in xerial framing (SnappyOutputStream), librdkafka and kafkajs send a raw
 *   block: both are read (xerialBlocks). The pure-JS snappyjs (kafkajs-snappy) took 7.2 ms per
 *   batch, twice gzip's stall.
 * - lz4: `lz4-napi` (lz4_flex, prebuilt), LZ4 frame format: what Kafka writes since KIP-57.
 * - zstd: `@mongodb-js/zstd` 1.x (zstd-rs, prebuilt), asynchronous on the thread pool (it has no
 *   sync API; no stall at all, at one round trip per batch); it streams frames without a content
 *   size in their header, as the Java client's ZstdOutputStream writes them. Node 20's zlib
 *   has no zstd, and pure-JS fzstd took 15 ms per batch. (Its 2.x+ majors download their binary
 *   at install time, hence the 1.x range.)
 *
 * A corrupt batch throws in every codec and kafkajs fails the fetch: retriable, nothing is
 * skipped. kafkajs keeps its codecs in one module-wide table, so this applies to every kafkajs
 * client in the process (idempotent).
 */
export function installKafkaCodecs(): void {
  if (installed) return;
  installed = true;
  const gzip = CompressionCodecs[CompressionTypes.GZIP]!();
  CompressionCodecs[CompressionTypes.GZIP] = () => ({
    compress: gzip.compress,
    decompress: async (buffer: Buffer) => gunzipBatch(buffer),
  });
  CompressionCodecs[CompressionTypes.Snappy] = () => ({
    compress: async (encoder: { buffer: Buffer }) => snappyCompress(encoder.buffer),
    decompress: async (buffer: Buffer) => snappyDecompressBatch(buffer),
  });
  CompressionCodecs[CompressionTypes.LZ4] = () => ({
    compress: async (encoder: { buffer: Buffer }) => lz4CompressFrame(encoder.buffer),
    decompress: async (buffer: Buffer) => lz4DecompressFrame(buffer),
  });
  CompressionCodecs[CompressionTypes.ZSTD] = () => ({
    compress: (encoder: { buffer: Buffer }) => zstdCompress(encoder.buffer, ZSTD_LEVEL),
    decompress: (buffer: Buffer) => zstdDecompress(buffer),
  });
}

/** Output chunks of at most this many bytes are allocated from a gzip trailer's size (see gunzipBatch). */
const MAX_GZIP_CHUNK = 64 * 1024 * 1024;

/**
 * A gzip record batch, inflated into one Buffer sized from the gzip trailer (ISIZE: the input's
 * size modulo 2^32). zlib's default writes 16 KiB chunks and concatenates them: a copy of every
 * inflated byte, 2–4% of a draining worker's main thread. ISIZE is only a hint: a multi-member
 * stream or a lying trailer still inflates correctly, in more chunks; it is checked for bounds
 * so a corrupt trailer cannot make zlib allocate gigabytes.
 */
export function gunzipBatch(buffer: Buffer): Buffer {
  if (buffer.length < 18 || buffer[0] !== 0x1f || buffer[1] !== 0x8b) return unzipSync(buffer);
  const size = buffer.readUInt32LE(buffer.length - 4);
  if (size === 0 || size > MAX_GZIP_CHUNK) return unzipSync(buffer);
  // One byte more than the output: zlib stops with room left, so it never allocates a second chunk.
  return unzipSync(buffer, { chunkSize: Math.max(64, size + 1) });
}

/** The xerial framing's magic (SnappyCodec.MAGIC_HEADER in snappy-java), then a version and a compatible-version int. */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;

/** A snappy record batch: a raw snappy block, or xerial framing (header, then blocks each prefixed by a 4-byte big-endian length). */
export function snappyDecompressBatch(buffer: Buffer): Buffer {
  if (buffer.length < XERIAL_HEADER_BYTES || !buffer.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)) return snappyUncompress(buffer) as Buffer;
  const blocks: Buffer[] = [];
  let offset = XERIAL_HEADER_BYTES;
  while (offset < buffer.length) {
    if (offset + 4 > buffer.length) throw new Error(`snappy (xerial): truncated block length at byte ${offset} of ${buffer.length}`);
    const size = buffer.readUInt32BE(offset);
    offset += 4;
    if (offset + size > buffer.length) throw new Error(`snappy (xerial): block of ${size} bytes at byte ${offset} overruns the ${buffer.length}-byte batch`);
    blocks.push(snappyUncompress(buffer.subarray(offset, offset + size)) as Buffer);
    offset += size;
  }
  return blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks);
}
