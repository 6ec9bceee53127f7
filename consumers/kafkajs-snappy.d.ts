/** kafkajs-snappy ships no types: a kafkajs codec factory (the shape of kafkajs's CompressionCodecs entries). */
declare module 'kafkajs-snappy' {
  const codec: () => { compress(encoder: { buffer: Buffer }): Promise<Buffer>; decompress(buffer: Buffer): Promise<Buffer> };
  export default codec;
}

/** snappyjs (kafkajs-snappy's engine) ships no types; the tests use it to build raw and xerial-framed snappy. */
declare module 'snappyjs' {
  const snappy: { compress(data: Uint8Array): Uint8Array; uncompress(data: Uint8Array): Uint8Array };
  export default snappy;
}
