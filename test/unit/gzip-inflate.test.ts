import kafkajs from 'kafkajs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { inflateGzipInPlace } from '../../consumers/gzip-inflate.js';

const { CompressionCodecs, CompressionTypes } = kafkajs;

describe('inflateGzipInPlace', () => {
  const payload = Buffer.from(Array.from({ length: 5_000 }, (_, i) => `record ${i} ${'x'.repeat(i % 97)}`).join('\n'));

  it('replaces kafkajs gzip decompression with a synchronous inflate giving the same bytes, and keeps compression', async () => {
    const before = CompressionCodecs[CompressionTypes.GZIP]!();
    inflateGzipInPlace();
    inflateGzipInPlace(); // idempotent: wraps the built-in codec once
    const after = CompressionCodecs[CompressionTypes.GZIP]!();
    expect(after.decompress).not.toBe(before.decompress);
    expect(after.compress).toBe(before.compress);

    // What kafkajs's own gzip produced, and what any producer's gzip produces, inflates to the input.
    const compressed = (await after.compress({ buffer: payload } as never)) as Buffer;
    expect(Buffer.compare(await after.decompress(compressed), payload)).toBe(0);
    expect(Buffer.compare(await after.decompress(gzipSync(payload)), payload)).toBe(0);
    expect(Buffer.compare(await after.decompress(compressed), await before.decompress(compressed))).toBe(0);
  });

  it('rejects a corrupt batch, as the built-in codec does', async () => {
    inflateGzipInPlace();
    const codec = CompressionCodecs[CompressionTypes.GZIP]!();
    const corrupt = gzipSync(payload);
    corrupt.fill(0, 20, 60);
    await expect(codec.decompress(corrupt)).rejects.toThrow();
  });
});
