import { open } from 'node:fs/promises';
import { BufferPool } from './buffer-pool.js';
import { ZstdFrameScanner } from './zstd-decompress.js';
import { ZstdInto } from './zstd-into.js';

/** Takes one piece of output; the piece's buffer is the producer's again once the promise settles. */
type PieceSink = (piece: Buffer) => Promise<void>;
/**
 * Bytes made into buffers their producer uses again: it lends each piece to `sink` and may call
 * it again before the last call settled (a write in flight while the next piece is made).
 */
export type PieceProducer = (sink: PieceSink) => Promise<void>;

const PIECE = 1 << 20;
/** Shared by every layer being inflated (two at most, beside each other): hot memory, reused. */
const output = new BufferPool(PIECE, 6);
const input = new BufferPool(PIECE, 2);

let inPlace: boolean | undefined;

/** Whether zstd can be decoded into reused buffers here (ZstdInto), so inflateZstdFileRange works. */
export function canInflateInPlace(): boolean {
  if (inPlace === undefined) {
    const probe = ZstdInto.open();
    probe?.close();
    inPlace = probe !== undefined;
  }
  return inPlace;
}

/**
 * Inflates the zstd stream lying in a file (`length` bytes from `offset`), read with pread into
 * a reused buffer and decoded into pooled 1 MiB pieces lent to `sink`: no fresh memory per
 * chunk, as node:zlib's streams would bring (util/zstd-into.ts). `hashed` takes in every output
 * byte, in order (each piece before it is lent), and `counted` hears of each piece. A stream that stops inside a frame is an
 * error; a file that ends early gives short output (the caller's size or digest check fails).
 */
export async function inflateZstdFileRange(
  file: { path: string; offset: number; length: number },
  sink: PieceSink,
  options: { source: string; hashed?: (piece: Buffer) => Promise<void>; counted?: (bytes: number) => void },
): Promise<void> {
  const decoder = ZstdInto.open();
  if (!decoder) throw new Error('zstd cannot be decoded in place here');
  const fail = (problem: string) => new Error(`zstd decompression of ${options.source} failed: ${problem}`);
  const scanner = new ZstdFrameScanner();
  const lent = new Set<Promise<void>>();
  let refused: { error: unknown } | undefined;
  const lend = async (buffer: Buffer, piece: Buffer): Promise<void> => {
    try {
      await options.hashed?.(piece);
    } catch (error) {
      output.give(buffer);
      throw error;
    }
    options.counted?.(piece.length);
    const settled: Promise<void> = sink(piece)
      .catch((error: unknown) => {
        refused ??= { error };
      })
      .finally(() => {
        lent.delete(settled);
        output.give(buffer);
      });
    lent.add(settled);
  };
  const handle = await open(file.path, 'r');
  const read = await input.take();
  let out: Buffer | undefined;
  try {
    out = await output.take();
    let filled = 0;
    for (let done = 0; done < file.length && !refused; ) {
      const { bytesRead } = await handle.read(read, 0, Math.min(read.length, file.length - done), file.offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
      let rest = read.subarray(0, bytesRead);
      try {
        scanner.split(rest);
      } catch (error) {
        throw fail((error as Error).message);
      }
      for (;;) {
        let step: { read: number; wrote: number };
        try {
          step = decoder.decode(rest, out, filled);
        } catch (error) {
          throw fail((error as Error).message);
        }
        if (step.read === 0 && step.wrote === 0 && filled < out.length && rest.length > 0)
          throw fail('the decoder stopped making progress');
        rest = rest.subarray(step.read);
        filled += step.wrote;
        const full = filled === out.length;
        if (full) {
          await lend(out, out);
          out = await output.take();
          filled = 0;
        }
        // A full piece may leave decoded bytes behind in the decoder: it is asked again.
        if ((!full && rest.length === 0) || refused) break;
      }
    }
    const problem = refused ? undefined : scanner.endProblem();
    if (problem) throw fail(problem);
    if (filled > 0 && !refused) {
      const last = out;
      out = undefined;
      await lend(last, last.subarray(0, filled));
    }
  } finally {
    if (out) output.give(out);
    input.give(read);
    decoder.close();
    await handle.close();
    await Promise.all(lent);
  }
  if (refused) throw refused.error;
}
