import zlib from 'node:zlib';

/**
 * Binary deltas are zstd frames whose dictionary is the old bytes (what `zstd --patch-from`
 * does), through node:zlib: no native addon, nothing the load host could lack.
 *
 * Parameters, measured on the files a Debian security-update rebuild changed (705 files,
 * 17.1 MB, same paths): zstd's own level-3 parameters give 3.81 MB, because past 256 KB they
 * size the match tables for the input alone and a multi-megabyte dictionary overflows them;
 * level 9 gives 1.14 MB at ~2.5× the time, level 19 1.08 MB at ~40×. Level 3 with tables sized
 * for dictionary + input gives 1.17 MB at level-3 speed. Past 1 MiB (dictionary + input; 6
 * files there, 0.55 MB of deltas) level 1 with a 2^19 hash table is as small as level 3 with
 * 2^20 hash and chain tables (551 vs 555 KB), faster, and needs 2 MB of tables instead of 8.
 * Larger tables gain nothing measurable; long-distance matching loses.
 *
 * Deltas are made on the main thread, synchronously: node's async zlib calls cost ~370 µs of
 * CPU each against ~85-130 µs (a 4 KB delta; most deltas are that small), and each libuv
 * thread keeps its own malloc arena, so compression contexts spread over four threads cost
 * ~60 MB more peak RSS (20 sequential 3 MB deltas: 130 MB with 4 threads, 73 with 1).
 */
const C = zlib.constants;

/** Past this (output size), a delta's output is streamed rather than made in one buffer. */
const SMALL_OUTPUT = 256 * 1024;
const LARGE_DELTA = 1024 * 1024;

/** Level and table sizes for a delta of `total` bytes of input and dictionary (see above). */
function parameters(total: number): Record<number, number> {
  if (total <= LARGE_DELTA) return { [C.ZSTD_c_compressionLevel]: 3 };
  const log = Math.max(17, Math.min(19, Math.ceil(Math.log2(total)) - 2));
  return { [C.ZSTD_c_compressionLevel]: 1, [C.ZSTD_c_hashLog]: log };
}

/** A zstd frame of `target` against `dictionary` (the old bytes). */
export function encodeDelta(target: Buffer, dictionary: Buffer): Buffer {
  const total = target.length + dictionary.length;
  return zlib.zstdCompressSync(target, {
    dictionary,
    // zlib allocates an output buffer of chunkSize per call: most deltas are far smaller than 16 KiB.
    chunkSize: Math.max(1024, Math.min(64 * 1024, 2 ** Math.ceil(Math.log2(target.length / 4 + 1)))),
    pledgedSrcSize: target.length,
    params: {
      ...parameters(total),
      // The window must reach back over the whole dictionary.
      [C.ZSTD_c_windowLog]: Math.max(10, Math.min(27, Math.ceil(Math.log2(total + 1)))),
      [C.ZSTD_c_checksumFlag]: 0,
    },
  });
}

/**
 * Passes the bytes a delta frame makes with `dictionary` to `sink`, and resolves to whether
 * they were exactly `size` bytes of a valid frame (false: the frame is corrupt, or not a delta
 * against this dictionary, or `sink` returned false). Never makes more than `size`; what `sink`
 * throws is thrown. Small outputs are made at once; larger ones streamed in 16 KiB chunks:
 * decoding a 512 MiB file changed in every piece peaked at 131 MB RSS with 1 MiB or 64 KiB
 * buffers, 112 with 16 KiB (V8 frees small young buffers sooner).
 */
export async function streamDelta(
  payload: Buffer,
  dictionary: Buffer,
  size: number,
  sink: (chunk: Buffer) => Promise<void> | boolean | undefined,
): Promise<boolean> {
  if (size <= SMALL_OUTPUT) {
    let out: Buffer;
    try {
      out = zlib.zstdDecompressSync(payload, { dictionary, maxOutputLength: Math.max(1, size) });
    } catch {
      return false; // zstd refused the frame, or it makes more than `size`
    }
    return out.length === size && (await sink(out)) !== false;
  }
  const inflate = zlib.createZstdDecompress({ dictionary, chunkSize: 16 * 1024 });
  inflate.end(payload);
  let got = 0;
  const chunks = inflate[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  try {
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch {
        return false; // zstd refused the frame
      }
      if (next.done) break;
      got += next.value.length;
      if (got > size || (await sink(next.value)) === false) return false;
    }
  } finally {
    inflate.destroy();
  }
  return got === size;
}
