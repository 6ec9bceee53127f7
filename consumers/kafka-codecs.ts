import { compress as zstdCompress, init as zstdInit } from '@bokuweb/zstd-wasm';
import { decompress as zstdDecompress } from 'fzstd';
import kafkajs from 'kafkajs';
import snappyCodec from 'kafkajs-snappy';
import { compressFrameSync as lz4CompressFrame, decompressFrameSync as lz4DecompressFrame } from 'lz4-napi';
import { unzipSync } from 'node:zlib';

const { CompressionCodecs, CompressionTypes } = kafkajs;

/** The record-batch codecs of the Kafka protocol (the `compression.type` values of the Java client). */
export const KAFKA_CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type KafkaCodec = (typeof KAFKA_CODECS)[number];

/** kafkajs's numeric attribute of each codec (the low 3 bits of a record batch's attributes). */
export const KAFKAJS_COMPRESSION: Readonly<Record<KafkaCodec, kafkajs.CompressionTypes>> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

/** zstd level 3 is the zstd CLI's and the Java client's default. */
const ZSTD_LEVEL = 3;
let zstdReady: Promise<void> | undefined;

let installed = false;

/**
 * Registers every Kafka codec with kafkajs, which ships only gzip and throws
 * KafkaJSNotImplemented on any other record batch. A single snappy batch from a Java or
 * librdkafka producer (or a topic whose `compression.type` imposes one) would otherwise fail
 * the fetch of its whole partition, and the batches behind it would never be read.
 *
 * All decompression runs synchronously on the JS thread, as gzip's does (below). A record
 * batch is at most the producer's request size (1 MB by default), and every codec here
 * inflates a batch faster than zlib does, so none stalls the event loop longer than gzip does
 * (measured in docs/architecture.md, "Record-batch codecs").
 * - gzip: `unzipSync` instead of kafkajs's async `unzip`. kafkajs decodes a fetch response one
 *   batch at a time, awaiting each batch's decompress before the next, so the async version
 *   is one thread-pool round trip per batch interleaved with the worker's decode slices;
 *   inflating in place measured +10% rows/s in alternated 2M-row drains (BENCHMARKS.md).
 * - snappy: kafkajs-snappy (snappyjs, pure JS), which also reads the xerial framing the Java
 *   client writes (`SnappyOutputStream`), not only raw snappy blocks.
 * - lz4: lz4-napi (lz4_flex, prebuilt binaries in per-platform npm packages), LZ4 frame
 *   format, which is what Kafka writes since message format v1 (KIP-57).
 * - zstd: fzstd (pure JS) decompresses; it streams frames whose header has no content size,
 *   as the Java client's `ZstdOutputStream` writes them. @bokuweb/zstd-wasm compresses (the
 *   SDK's `compression: 'zstd'`); its decompress needs the content size, hence two packages.
 *   Node 20 has no zstd in node:zlib.
 *
 * A corrupt batch throws in every codec, and kafkajs fails the fetch: retriable, nothing is
 * skipped. kafkajs keeps its codecs in one module-wide table, so this applies to every kafkajs
 * client in the process (idempotent).
 */
export function installKafkaCodecs(): void {
  if (installed) return;
  installed = true;
  const gzip = CompressionCodecs[CompressionTypes.GZIP]!();
  CompressionCodecs[CompressionTypes.GZIP] = () => ({
    compress: gzip.compress,
    decompress: async (buffer: Buffer) => unzipSync(buffer),
  });
  CompressionCodecs[CompressionTypes.Snappy] = snappyCodec;
  CompressionCodecs[CompressionTypes.LZ4] = () => ({
    compress: async (encoder: { buffer: Buffer }) => lz4CompressFrame(encoder.buffer),
    decompress: async (buffer: Buffer) => lz4DecompressFrame(buffer),
  });
  CompressionCodecs[CompressionTypes.ZSTD] = () => ({
    compress: async (encoder: { buffer: Buffer }) => zstdCompressBuffer(encoder.buffer),
    decompress: async (buffer: Buffer) => {
      const out = zstdDecompress(buffer);
      return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    },
  });
}

/** zstd at the default level; loads the WebAssembly module on first use. */
export async function zstdCompressBuffer(data: Buffer): Promise<Buffer> {
  await (zstdReady ??= zstdInit());
  const out = zstdCompress(data, ZSTD_LEVEL);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}
