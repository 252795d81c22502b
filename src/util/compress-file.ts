import type { Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { BufferPool } from './buffer-pool.js';
import { type CompressMethod, DEFAULT_LEVELS, PIECE_BYTES, ParallelCompressor } from './compress.js';

const CORES = Math.max(1, availableParallelism());
/** Piece buffers shared by every file being compressed: as many as pieces under way at once. */
const pools: Record<CompressMethod, BufferPool> = {
  gzip: new BufferPool(PIECE_BYTES.gzip, CORES),
  zstd: new BufferPool(PIECE_BYTES.zstd, CORES),
};

/**
 * The compressed bytes of `length` bytes of the file at `path` from `offset`, as the
 * ParallelCompressor makes them from a stream, but each piece read with one pread into a buffer
 * used again once the piece is compressed (util/buffer-pool.ts says why).
 *
 * A file that ends early ends the output early: the caller checks the bytes' digest, which then
 * fails. `counted` hears of each piece as it is read (progress); `hash`, when given, takes in
 * every byte read, in order.
 */
export function compressFileRange(
  file: { path: string; offset: number; length: number },
  method: CompressMethod,
  level: number = DEFAULT_LEVELS[method],
  counted: (bytes: number) => void = () => undefined,
  hash?: Hash,
): Readable {
  const pool = pools[method];
  // Buffers the compressor holds, by their ArrayBuffer (the last piece comes back as a part).
  const lent = new Map<ArrayBufferLike, Buffer>();
  const giveBack = (input: Buffer) => {
    const whole = lent.get(input.buffer);
    if (whole && lent.delete(input.buffer)) pool.give(whole);
  };
  const compressor = new ParallelCompressor(method, level, PIECE_BYTES[method], giveBack);
  // A destroyed compressor never finishes its pieces: what it held goes back to the pool.
  compressor.once('close', () => {
    for (const whole of lent.values()) giveBack(whole);
  });
  (async () => {
    const handle = await open(file.path, 'r');
    try {
      for (let done = 0; done < file.length && !compressor.destroyed; ) {
        const buffer = await pool.take();
        let got = 0;
        try {
          const want = Math.min(buffer.length, file.length - done);
          for (let n = -1; got < want && n !== 0; got += n) {
            ({ bytesRead: n } = await handle.read(buffer, got, want - got, file.offset + done + got));
          }
        } catch (error) {
          pool.give(buffer);
          throw error;
        }
        if (got === 0 || compressor.destroyed) {
          pool.give(buffer);
          break;
        }
        const piece = got === buffer.length ? buffer : buffer.subarray(0, got);
        // Hashed here, between reads: the bytes are in hand, and a second reader costs a copy more.
        hash?.update(piece);
        lent.set(buffer.buffer, buffer);
        compressor.write(piece);
        done += got;
        counted(got);
      }
      compressor.end();
    } finally {
      await handle.close();
    }
  })().catch((error: unknown) => compressor.destroy(error instanceof Error ? error : new Error(String(error))));
  return compressor;
}
