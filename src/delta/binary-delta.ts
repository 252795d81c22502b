import { promisify } from 'node:util';
import zlib from 'node:zlib';

/**
 * Binary deltas are zstd frames whose dictionary is the old bytes (what `zstd --patch-from`
 * does), through node:zlib: no native addon, nothing the load host could lack. Small ones run
 * on libuv's threads, beside the hashing on the main thread; those whose input and dictionary
 * pass 1 MiB run on the main thread: each libuv thread keeps its own malloc arena, and four
 * arenas each holding a large zstd context (tables, window, dictionary copy) cost 60 MB of
 * peak RSS (measured: 20 sequential 3 MB deltas, 130 MB peak with 4 threads, 73 MB with 1).
 *
 * Measured on the 705 files a Debian security-update rebuild changed (17.1 MB, same paths):
 * zstd's own level-3 parameters give 3.81 MB, because for inputs beyond 256 KB they size the
 * match tables (2^17 hash, 2^16 chain) for the input alone and a multi-megabyte dictionary
 * overflows them; level 9 gives 1.14 MB but is ~2.5× slower; level 19 1.08 MB at ~40×.
 * Level 3 with tables sized for dictionary + input (capped at 2^20, so 8 MB of tables) gives
 * 1.17 MB at level-3 speed. Larger tables gain nothing measurable; LDM loses.
 */
const compress = promisify(zlib.zstdCompress);
const decompress = promisify(zlib.zstdDecompress);
const C = zlib.constants;

const syncCompress = async (data: Buffer, options: zlib.ZstdOptions): Promise<Buffer> => zlib.zstdCompressSync(data, options);
const syncDecompress = async (data: Buffer, options: zlib.ZstdOptions): Promise<Buffer> => zlib.zstdDecompressSync(data, options);

const LEVEL = 3;
const ON_MAIN_THREAD = 1024 * 1024;
const TABLE_LOG_MAX = 20;

/** zlib allocates an output buffer of chunkSize per call (16 KiB by default): sized to the output, most deltas allocate far less. */
function chunkFor(expected: number): number {
  return Math.max(1024, Math.min(256 * 1024, 2 ** Math.ceil(Math.log2(expected + 1))));
}

function tables(total: number): Record<number, number> {
  // zstd picks its level-3 tables by size tier, sized for inputs, not for input + dictionary;
  // below 1 MiB that costs nothing measurable, and allocating bigger ones costs time.
  if (total <= 1024 * 1024) return {};
  const log = Math.max(17, Math.min(TABLE_LOG_MAX, Math.ceil(Math.log2(total)) - 2));
  return { [C.ZSTD_c_hashLog]: log, [C.ZSTD_c_chainLog]: log };
}

/** A zstd frame of `target` against `dictionary` (the old bytes). */
export async function encodeDelta(target: Buffer, dictionary: Buffer): Promise<Buffer> {
  const total = target.length + dictionary.length;
  return (total > ON_MAIN_THREAD ? syncCompress : compress)(target, {
    dictionary,
    chunkSize: chunkFor(target.length / 2),
    pledgedSrcSize: target.length,
    params: {
      [C.ZSTD_c_compressionLevel]: LEVEL,
      // The window must reach back over the whole dictionary.
      [C.ZSTD_c_windowLog]: Math.max(10, Math.min(27, Math.ceil(Math.log2(total + 1)))),
      [C.ZSTD_c_checksumFlag]: 0,
      ...tables(total),
    },
  });
}

/**
 * The bytes a delta frame makes with `dictionary`: exactly `size` of them, or undefined when
 * the frame is not a valid delta against it (callers report that as a corrupt delta). Never
 * produces more than `size` bytes, whatever the frame claims.
 */
export async function decodeDelta(payload: Buffer, dictionary: Buffer, size: number): Promise<Buffer | undefined> {
  try {
    const inflate = size + dictionary.length > ON_MAIN_THREAD ? syncDecompress : decompress;
    const out = await inflate(payload, { dictionary, chunkSize: chunkFor(size), maxOutputLength: Math.max(size, 1) });
    return out.length === size ? out : undefined;
  } catch {
    return undefined;
  }
}
