import kafkajs from 'kafkajs';
import { unzipSync } from 'node:zlib';

const { CompressionCodecs, CompressionTypes } = kafkajs;

let installed = false;

/**
 * Makes kafkajs inflate gzip record batches on the calling (JS) thread instead of Node's
 * thread pool. Compression is left as it is.
 *
 * Why: kafkajs decodes a fetch response one record batch at a time, awaiting each batch's
 * async `unzip` before it starts the next. Each batch is then one round trip through the
 * thread pool, and it interleaves with the worker's decode slices. The inflate itself is
 * short (a record batch is at most the producer's request size, 1 MB by default). Inflating
 * in place measured +10% rows/s in alternated 2M-row drains (122k, 130k, 121k → 130k, 155k,
 * 127k), with less CPU and about a third of the GC time. The output is the same bytes, and a
 * corrupt batch still fails the fetch (zlib throws, kafkajs rejects).
 *
 * kafkajs keeps its codecs in one module-wide table, so this applies to every kafkajs client in
 * the process: decompression only, with identical results.
 */
export function inflateGzipInPlace(): void {
  if (installed) return;
  installed = true;
  const builtIn = CompressionCodecs[CompressionTypes.GZIP]!();
  CompressionCodecs[CompressionTypes.GZIP] = () => ({
    compress: builtIn.compress,
    decompress: async (buffer: Buffer) => unzipSync(buffer),
  });
}
