import kafkajs from 'kafkajs';
import { compressFrameSync } from 'lz4-napi';
import { compressSync as snappyCompress } from 'snappy';
import { compress as zstdCompress } from '@mongodb-js/zstd';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { gunzipBatch, installKafkaCodecs, KAFKA_CODECS, KAFKAJS_COMPRESSION, snappyDecompressBatch } from '@kafka-clickhouse-ingest/producer/kafka-codecs.js';

const { CompressionCodecs, CompressionTypes } = kafkajs;

/** About 1 MB of record-like text: a full record batch at the producer's default request size. */
const payload = Buffer.from(Array.from({ length: 14_000 }, (_, i) => `record ${i} run-${i % 37} ${'x'.repeat(i % 97)} ${Math.sin(i)}`).join('\n'));

function codec(type: kafkajs.CompressionTypes) {
  return (CompressionCodecs as Record<number, () => { compress(e: { buffer: Buffer }): Promise<Buffer>; decompress(b: Buffer): Promise<Buffer> }>)[type]!();
}

/** The xerial framing the Java client's snappy (SnappyOutputStream) writes: magic, version, compat, then length-prefixed 32 KiB blocks. */
function xerialSnappy(data: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from([130, 83, 78, 65, 80, 80, 89, 0, 0, 0, 0, 1, 0, 0, 0, 1])];
  for (let off = 0; off < data.length; off += 32 * 1024) {
    const block = snappyCompress(data.subarray(off, off + 32 * 1024));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(block.length);
    parts.push(len, block);
  }
  return Buffer.concat(parts);
}

describe('installKafkaCodecs', () => {
  it('names every Kafka codec with its record-batch attribute', () => {
    expect(KAFKA_CODECS).toEqual(['none', 'gzip', 'snappy', 'lz4', 'zstd']);
    expect(Object.values(KAFKAJS_COMPRESSION)).toEqual([0, 1, 2, 3, 4]);
  });

  it('keeps kafkajs gzip compression and inflates synchronously to the same bytes', async () => {
    const before = codec(CompressionTypes.GZIP);
    installKafkaCodecs();
    installKafkaCodecs(); // idempotent: wraps the built-in codec once
    const after = codec(CompressionTypes.GZIP);
    expect(after.decompress).not.toBe(before.decompress);
    expect(after.compress).toBe(before.compress);
    const compressed = await after.compress({ buffer: payload });
    expect(Buffer.compare(await after.decompress(compressed), payload)).toBe(0);
    expect(Buffer.compare(await after.decompress(gzipSync(payload)), payload)).toBe(0);
  });

  it.each(['snappy', 'lz4', 'zstd'] as const)('%s: what kafkajs compresses with it decompresses to the input', async (name) => {
    installKafkaCodecs();
    const c = codec(KAFKAJS_COMPRESSION[name]);
    const compressed = await c.compress({ buffer: payload });
    expect(compressed.length).toBeLessThan(payload.length / 2);
    expect(Buffer.compare(await c.decompress(compressed), payload)).toBe(0);
  });

  it('reads the framings other producers write: xerial snappy (Java), raw snappy (librdkafka), an LZ4 frame, a zstd frame', async () => {
    installKafkaCodecs();
    expect(Buffer.compare(await codec(CompressionTypes.Snappy).decompress(xerialSnappy(payload)), payload)).toBe(0);
    expect(Buffer.compare(await codec(CompressionTypes.Snappy).decompress(snappyCompress(payload)), payload)).toBe(0);
    expect(Buffer.compare(await codec(CompressionTypes.LZ4).decompress(compressFrameSync(payload)), payload)).toBe(0);
    expect(Buffer.compare(await codec(CompressionTypes.ZSTD).decompress(await zstdCompress(payload, 3)), payload)).toBe(0);
  });

  it('refuses a truncated xerial frame instead of returning part of the batch', () => {
    const framed = xerialSnappy(payload);
    expect(() => snappyDecompressBatch(framed.subarray(0, framed.length - 10))).toThrow(/overruns/);
  });

  it.each(['gzip', 'snappy', 'lz4', 'zstd'] as const)('%s: a corrupt batch rejects (kafkajs then fails the fetch, nothing is skipped)', async (name) => {
    installKafkaCodecs();
    const c = codec(KAFKAJS_COMPRESSION[name]);
    const corrupt = Buffer.from(await c.compress({ buffer: payload }));
    corrupt.fill(0xff, 4, Math.min(corrupt.length, 400));
    const outcome = await c.decompress(corrupt).then(
      (out) => (Buffer.compare(out, payload) === 0 ? 'same' : 'different'),
      () => 'rejected',
    );
    expect(outcome).toBe('rejected');
  });
});

describe('gunzipBatch', () => {
  it('inflates into one Buffer sized from the gzip trailer, with no copy of the output', () => {
    for (const n of [0, 1, 100, 16_383, 16_384, 16_385, payload.length]) {
      const data = n === payload.length ? payload : randomBytes(n);
      const out = gunzipBatch(gzipSync(data));
      expect(out.equals(data)).toBe(true);
      // zlib's default would be 16 KiB chunks concatenated into a fresh Buffer of exactly n bytes.
      if (n > 16_384) expect(out.buffer.byteLength).toBe(n + 1);
    }
  });

  it('still inflates a stream whose trailer does not give its size: several members, a wrong or huge ISIZE', () => {
    const twoMembers = Buffer.concat([gzipSync(payload.subarray(0, 500_000)), gzipSync(payload.subarray(500_000))]);
    expect(gunzipBatch(twoMembers).equals(payload)).toBe(true);
    const lying = Buffer.from(gzipSync(payload));
    // zlib checks ISIZE against what it inflated only when the stream ends: a wrong one is refused, as before.
    lying.writeUInt32LE(100, lying.length - 4);
    expect(() => gunzipBatch(lying)).toThrow();
    const huge = Buffer.from(gzipSync(payload));
    huge.writeUInt32LE(0xffffffff, huge.length - 4);
    expect(() => gunzipBatch(huge)).toThrow();
  });

  it('refuses what is not gzip, as zlib does', () => {
    expect(() => gunzipBatch(Buffer.from('not a gzip stream at all'))).toThrow();
  });
});

