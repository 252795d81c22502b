import type { Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { BufferPool } from './buffer-pool.js';
import { type CompressMethod, DEFAULT_LEVELS, giveEngine, PIECE_BYTES, takeEngine, takeSlot } from './compress.js';
import { compressInto, outputBound } from './compress-into.js';
import type { PieceProducer } from './inflate-file.js';

const CORES = Math.max(1, availableParallelism());
/** Input pieces shared by every file being compressed: as many as pieces under way at once. */
const inputs: Record<CompressMethod, BufferPool> = {
  gzip: new BufferPool(PIECE_BYTES.gzip, CORES),
  zstd: new BufferPool(PIECE_BYTES.zstd, CORES),
};
/** Output pieces: one per piece under way, and one being written. */
const outputs: Record<CompressMethod, BufferPool> = {
  gzip: new BufferPool(outputBound(PIECE_BYTES.gzip), CORES + 1),
  zstd: new BufferPool(outputBound(PIECE_BYTES.zstd), CORES + 1),
};

/**
 * The compressed bytes of `length` bytes of the file at `path` from `offset`, byte for byte what
 * the ParallelCompressor makes from a stream (one gzip member or zstd frame per piece), but made
 * in reused buffers: each piece read with one pread, compressed on the thread pool into an output
 * buffer (util/compress-into.ts), and the outputs lent to the sink in order, one at a time; a
 * buffer is used again once the sink's promise for it settles.
 *
 * A file that ends early ends the output early: the caller checks the bytes' digest, which then
 * fails. `counted` hears of each piece as it is read (progress); `hash`, when given, takes in
 * every byte read, in order. On a failure (the sink's, the file's), nothing is lent after the
 * producer settles.
 */
export function compressFileRange(
  file: { path: string; offset: number; length: number },
  method: CompressMethod,
  level: number = DEFAULT_LEVELS[method],
  counted: (bytes: number) => void = () => undefined,
  hash?: Hash,
): PieceProducer {
  return async (sink) => {
    const handle = await open(file.path, 'r');
    // The pieces' hand-on, in order: each waits for the one before it.
    let handedOn: Promise<void> = Promise.resolve();
    let failure: { error: unknown } | undefined;
    try {
      // An empty range still gets one (empty) member or frame: a valid compressed stream.
      for (let done = 0, pieces = 0; failure === undefined && (pieces === 0 || done < file.length); pieces++) {
        const input = await inputs[method].take();
        let got = 0;
        try {
          const want = Math.min(input.length, file.length - done);
          for (let n = -1; got < want && n !== 0; got += n) {
            ({ bytesRead: n } = await handle.read(input, got, want - got, file.offset + done + got));
          }
        } catch (error) {
          inputs[method].give(input);
          throw error;
        }
        if ((got === 0 && pieces > 0) || failure !== undefined) {
          inputs[method].give(input);
          break;
        }
        const piece = input.subarray(0, got);
        // Hashed here, between reads: the bytes are in hand, and a second reader costs a copy more.
        hash?.update(piece);
        done += got;
        counted(got);
        handedOn = handOn(handedOn, compressPiece(method, level, input, piece), sink);
        handedOn.catch((error: unknown) => (failure ??= { error }));
        if (got === 0) break;
      }
    } finally {
      await handedOn.catch(() => undefined);
      await handle.close();
    }
    if (failure) throw failure.error;
  };
}

/** A piece's compressed bytes, in a pooled buffer `giveBack` returns. */
interface Compressed {
  bytes: Buffer;
  giveBack: () => void;
}

/** One piece compressed into a pooled output buffer, on a slot of the process's and a kept compressor. */
async function compressPiece(method: CompressMethod, level: number, input: Buffer, piece: Buffer): Promise<Compressed> {
  const out = await outputs[method].take();
  const release = await takeSlot(method);
  const engine = takeEngine(method, level, 'lent');
  try {
    const bytes = await compressInto(engine, method, piece, out);
    giveEngine(method, level, engine, 'lent');
    return { bytes, giveBack: () => outputs[method].give(out) };
  } catch (error) {
    engine.destroy(); // in an unknown state: not used again
    outputs[method].give(out);
    throw error;
  } finally {
    release();
    inputs[method].give(input);
  }
}

/** Lends a piece's output to the sink once the pieces before it are handed on, then takes its buffer back. */
async function handOn(before: Promise<void>, compressed: Promise<Compressed>, sink: (piece: Buffer) => Promise<void>): Promise<void> {
  let piece: Compressed | undefined;
  try {
    piece = await compressed;
    await before;
    await sink(piece.bytes);
  } finally {
    piece?.giveBack();
  }
}
